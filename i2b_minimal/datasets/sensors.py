"""THINGS channel names as MNE objects: sensor positions, ``mne.Info``, Evoked and Epochs.

MNE knows where every sensor sits; this module only maps the THINGS channel names onto
MNE's built-in positions. The 17 THINGS-EEG2 electrodes go on the colin27 10-20 montage,
the 271 THINGS-MEG sensors on the canonical CTF-275 helmet. ``to_evoked`` and
``to_epochs`` wrap generated (or real) signals so that the whole MNE toolbox works on them.
"""

from __future__ import annotations

import functools
from typing import Sequence

import mne
import numpy as np

from .arrays import as_float_array, sampling_rate


@functools.cache
def _eeg_montage() -> mne.channels.DigMontage:
    # colin27_1020 replaces standard_1020, which MNE 1.14 deprecates; older MNE lacks it.
    name = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"
    return mne.channels.make_standard_montage(name)


@functools.cache
def _eeg_sphere() -> tuple[float, float, float, float]:
    """The head sphere fitted to all 10-20 positions of the montage (head frame, m).

    MNE's default sphere (origin 0, radius 95 mm) does not match colin27's head frame, and a
    sphere fitted to only 17 posterior electrodes is ill-posed; the full montage pins it down.
    """
    montage = _eeg_montage()
    full = mne.create_info(montage.ch_names, 100.0, "eeg")
    full.set_montage(montage)
    radius, origin, _ = mne.bem.fit_sphere_to_headshape(full, dig_kinds=("eeg",), units="m", verbose=False)
    return (*map(float, origin), float(radius))


def _ctf_base(name: str) -> str:
    # THINGS-MEG and MNE's canonical file name the same sensor "MLC11-4408" and "MLC11-2908":
    # the part after the dash is a system serial number, not part of the sensor's identity.
    return name.split("-")[0]


@functools.cache
def _ctf275_channels() -> dict[str, dict]:
    canonical = mne.channels.read_meg_canonical_info("ctf275", verbose=False)
    return {_ctf_base(ch["ch_name"]): ch for ch in canonical["chs"]}


def ctf275_names() -> list[str]:
    """The canonical CTF-275 helmet's 274 working sensors, e.g. "MLC11-2908" (THINGS-MEG kept 271)."""
    return [ch["ch_name"] for ch in _ctf275_channels().values()]


def unknown_channels(ch_names: Sequence[str], ch_type: str) -> list[str]:
    """The names MNE cannot place: not on the 10-20 montage ("eeg") or the CTF-275 helmet ("mag")."""
    if ch_type == "eeg":
        return [n for n in ch_names if n not in _eeg_montage().ch_names]
    if ch_type == "mag":
        return [n for n in ch_names if _ctf_base(n) not in _ctf275_channels()]
    raise ValueError(f"ch_type must be 'eeg' or 'mag', got {ch_type!r}")


def _infer_ch_type(ch_names: Sequence[str]) -> str:
    return "mag" if not unknown_channels(ch_names, "mag") else "eeg"


def make_info(ch_names: Sequence[str], sfreq: float = 100.0, ch_type: str | None = None) -> mne.Info:
    """An ``mne.Info`` with sensor positions for THINGS channel names.

    ``ch_type`` "eeg" places the names on the colin27 10-20 montage (in MNE's head frame);
    "mag" copies positions and coil types from the canonical CTF-275 helmet, matching names
    with any "-XXXX" serial suffix removed. ``None`` picks "mag" when every name is a CTF sensor.
    """
    ch_names = list(ch_names)
    ch_type = ch_type or _infer_ch_type(ch_names)
    unknown = unknown_channels(ch_names, ch_type)
    if unknown:
        names = _eeg_montage().ch_names
        where = (f"the EEG montage {names[:3]}... ({len(names)} 10-20 names)" if ch_type == "eeg"
                 else "the CTF-275 helmet (names like 'MLC11' or 'MLC11-4408')")
        raise ValueError(f"Unknown channel names {unknown}: not in {where}. Check ch_type={ch_type!r}.")
    info = mne.create_info(ch_names, float(sfreq), ch_type)
    if ch_type == "eeg":
        info.set_montage(_eeg_montage(), verbose=False)  # MRI -> head frame via the montage's fiducials
    else:
        for ch in info["chs"]:
            source = _ctf275_channels()[_ctf_base(ch["ch_name"])]
            ch["loc"] = source["loc"].copy()
            ch["coil_type"], ch["coord_frame"] = source["coil_type"], source["coord_frame"]
    return info


def topomap_sphere(info: mne.Info):
    """The ``sphere`` argument for ``mne.viz.plot_topomap``: fitted for EEG, MNE's default for MEG."""
    return _eeg_sphere() if mne.channel_type(info, 0) == "eeg" else None


def _sampling(times, sfreq, tmin, n_times) -> tuple[float, float]:
    if times is not None:
        if len(times) != n_times:
            raise ValueError(f"times has {len(times)} values but the signals have {n_times} samples")
        return sampling_rate(times), float(times[0])
    if sfreq is None:
        raise ValueError("pass times, or sfreq (and optionally tmin)")
    return float(sfreq), float(tmin or 0.0)


def signal_scale(signals, ch_type: str) -> float:
    """The factor that turns THINGS signal values into MNE's SI units (V for EEG, T for MEG).

    EEG: THINGS-EEG2 values are whitened and unitless; 1e-6 makes one unit read as 1 "uV" on MNE's
    axes, which keeps its default scalings sensible (the label is nominal). MEG: values under 1e-9
    are taken to be in tesla already (1.0); larger ones cannot be tesla and are taken as fT (1e-15).
    THINGS-MEG's baseline z-scores (about 1) therefore read as "fT", a nominal label as for EEG.
    """
    if ch_type == "eeg":
        return 1e-6
    return 1.0 if float(np.max(np.abs(as_float_array(signals, "signals")))) < 1e-9 else 1e-15


def to_evoked(signals, ch_names, times=None, *, sfreq=None, tmin=None, ch_type=None, scale=None,
              comment="generated", nave=1) -> mne.EvokedArray:
    """An ``mne.EvokedArray`` of ``signals`` (C, T) times ``scale`` (default: ``signal_scale``)."""
    data = as_float_array(signals, "signals")
    if data.ndim != 2:
        raise ValueError(f"to_evoked takes (channels, times), got {data.shape}; average first or use to_epochs")
    scaled, info, tmin = _scaled_with_info(data, ch_names, times, sfreq, tmin, ch_type, scale)
    return mne.EvokedArray(scaled, info, tmin=tmin, comment=comment, nave=nave, verbose=False)


def to_epochs(signals, ch_names, times=None, *, sfreq=None, tmin=None, ch_type=None, scale=None,
              metadata=None) -> mne.EpochsArray:
    """An ``mne.EpochsArray`` of ``signals`` (n, C, T) times ``scale``; ``metadata`` one row per epoch."""
    data = as_float_array(signals, "signals")
    if data.ndim != 3:
        raise ValueError(f"to_epochs takes (n_epochs, channels, times), got {data.shape}")
    scaled, info, tmin = _scaled_with_info(data, ch_names, times, sfreq, tmin, ch_type, scale)
    return mne.EpochsArray(scaled, info, tmin=tmin, metadata=metadata, verbose=False)


def _scaled_with_info(data, ch_names, times, sfreq, tmin, ch_type, scale):
    """What to_evoked and to_epochs share: the data in MNE's units, its ``mne.Info`` and its first time."""
    sfreq, tmin = _sampling(times, sfreq, tmin, data.shape[-1])
    info = make_info(ch_names, sfreq, ch_type)
    scale = signal_scale(data, mne.channel_type(info, 0)) if scale is None else scale
    return data * scale, info, tmin
