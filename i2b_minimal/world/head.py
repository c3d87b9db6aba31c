"""The simulated brain's sensors and head: where the sensors sit, and the lead field of a dipole.

The 17 THINGS-EEG2 electrodes (Gifford et al. 2022) on MNE's 10-20 positions, referenced
to Fz, or the 271 axial gradiometers of a CTF-275 helmet like THINGS-MEG's (Hebart et al.
2023), around MNE's spherical conductor (``mne.make_sphere_model``); the lead field
(``mne.make_forward_dipole``) is the pattern a unit dipole leaves on every sensor.
"""

from __future__ import annotations

import numpy as np

from i2b_minimal.datasets import sensors
from i2b_minimal.datasets.loaders import EEG_CHANNELS  # the 17 THINGS-EEG2 electrodes, in the published order

EEG_REFERENCE = "Fz"  # a frontal reference keeps the posterior P1 positive, as in recordings
N_MEG_CHANNELS = 271



def meg_channel_names() -> list[str]:
    """271 sensor names of the canonical CTF-275 helmet, standing in for THINGS-MEG's 271."""
    names = sensors.ctf275_names()
    # The canonical file lists 274 working sensors; drop three spread-out ones to keep 271
    # (which ones THINGS-MEG lacks does not matter for a simulation).
    return [name for i, name in enumerate(names) if i not in (40, 140, 240)][:N_MEG_CHANNELS]


def sensor_info(modality: str, with_reference: bool = False):
    """MNE ``Info`` with sensor positions: the 17 EEG electrodes (+ Fz) or the 271 CTF MEG sensors."""
    import mne

    if modality == "eeg":
        return sensors.make_info(list(EEG_CHANNELS) + ([EEG_REFERENCE] if with_reference else []), 100.0, "eeg")
    if modality == "meg":
        info = sensors.make_info(meg_channel_names(), 200.0, "mag")
        info["dev_head_t"] = mne.transforms.Transform("meg", "head")  # the head sits at the helmet's origin
        return info
    raise ValueError(f"modality must be 'eeg' or 'meg', not {modality!r}")


def head_sphere(modality: str):
    """The spherical conductor, its centre and its radius (m)."""
    import mne

    if modality == "eeg":
        # The sphere fitted to the whole 10-20 montage, the one the topographies use too.
        *centre, radius = sensors.topomap_sphere(sensor_info("eeg"))
        return mne.make_sphere_model(centre, radius, verbose=False), np.asarray(centre), float(radius)
    # MEG sees only the centre of a spherical conductor; the CTF helmet is centred on the device origin.
    centre = np.zeros(3)
    return mne.make_sphere_model(centre, None, verbose=False), centre, 0.09


def lead_field(modality, info, sphere, positions, orientations):
    """Sensor pattern (C, n) of unit dipoles (1 A*m) at the given places, referenced for EEG."""
    import mne

    n = len(positions)
    dipoles = mne.Dipole(np.arange(n) * 1e-3, positions, np.ones(n), orientations, np.full(n, 100.0))
    forward, _ = mne.make_forward_dipole(dipoles, sphere, info, trans=None, verbose=False)
    gain = forward["sol"]["data"].astype(np.float64)
    if modality == "eeg":
        gain = gain[:-1] - gain[-1:]  # re-reference to the last channel (Fz), then drop it
    return gain


def unit(vectors):
    """The vectors along the last axis, scaled to length 1."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
