"""Does a generated signal look like a brain response? ERP peaks and the power spectrum.

Correlations (``metrics``) ask whether a prediction tracks the real signal
image by image. The checks here ask a different question, raised by the
reviewers of arXiv 2509.00787: does the *waveform* have the right shape?

* **ERP peaks.** A visual evoked response has a positive deflection near
  100 ms (P1), a negative one near 170 ms (N1) and a positive one near 250 ms
  (P2) over posterior sensors (Luck 2014, *An Introduction to the
  Event-Related Potential Technique*, ch. 3). We find each peak inside its
  window on the grand average and compare latencies.
* **Spectrum.** Welch's averaged periodogram (Welch 1967,
  ``scipy.signal.welch``) of generated and real signals, compared on a log
  scale, because power in M/EEG falls off over decades with frequency.

All functions take numpy arrays or torch tensors (``sensors.as_float_array``) and return
floats or dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.signal import welch

from i2b_minimal.datasets.arrays import as_float_array

# Typical windows of the visual P1, N1 and P2, in seconds after image onset
# (Luck 2014, ch. 3). Pass your own when your data peak elsewhere.
ERP_WINDOWS: dict[str, tuple[float, float]] = {"P1": (0.08, 0.13), "N1": (0.14, 0.20), "P2": (0.20, 0.30)}


def erp_waveform(signals, channels: Sequence[int] | None = None, reduce: str = "mean") -> np.ndarray:
    """One time course (T,) summarising ``signals`` (n_images, C, T) or (C, T).

    First the grand average over images (the ERP, Luck 2014). Then across
    channels:

    * ``reduce="mean"``: the mean over ``channels`` (all by default). For
      THINGS-EEG2 every one of the 17 channels is occipital or parietal, so
      the mean is the posterior region of interest where P1/N1/P2 live, and
      the sign of each component is kept.
    * ``reduce="gfp"``: global field power, the standard deviation across
      channels at each time (Lehmann & Skrandies 1980). Use it for MEG:
      magnetic fields flip sign across the head, so a channel mean cancels.
      GFP is never negative, so every component becomes a maximum.
    """
    x = as_float_array(signals, "signals")
    if x.ndim == 3:
        x = x.mean(axis=0)
    if x.ndim != 2:
        raise ValueError(f"signals must have shape (n_images, C, T) or (C, T), got shape {x.shape}")
    if channels is not None:
        x = x[list(channels)]
    if reduce == "mean":
        return x.mean(axis=0)
    if reduce == "gfp":
        return x.std(axis=0)
    raise ValueError(f"reduce must be 'mean' or 'gfp', got {reduce!r}")


def erp_peaks(
    signals,
    times,
    windows: Mapping[str, tuple[float, float]] = ERP_WINDOWS,
    channels: Sequence[int] | None = None,
    reduce: str = "mean",
) -> dict[str, dict[str, float]]:
    """Peak latency (s) and amplitude of each ERP component.

    ``signals``: (n_images, C, T) or (C, T); ``times``: (T,) seconds.
    Returns ``{"P1": {"latency": s, "amplitude": a}, ...}`` on the waveform of
    :func:`erp_waveform`. With ``reduce="mean"`` a component whose name starts
    with "P" is the maximum in its window and one starting with "N" the
    minimum (the polarity convention of ERP names, Luck 2014); with
    ``reduce="gfp"``, or any other name, the peak is the largest absolute value.
    """
    wave = erp_waveform(signals, channels=channels, reduce=reduce)
    times = check_times(times, wave.shape[-1])
    peaks = {}
    for component, (start, stop) in windows.items():
        inside = np.flatnonzero((times >= start) & (times <= stop))
        if inside.size == 0:
            raise ValueError(
                f"ERP window {component}={start, stop} s holds no sample of times "
                f"[{times[0]:.3f}, {times[-1]:.3f}] s; pass windows= that fit the epoch"
            )
        segment = wave[inside]
        if reduce == "mean" and component.upper().startswith("P"):
            best = np.argmax(segment)
        elif reduce == "mean" and component.upper().startswith("N"):
            best = np.argmin(segment)
        else:
            best = np.argmax(np.abs(segment))
        peaks[component] = {"latency": float(times[inside[best]]), "amplitude": float(segment[best])}
    return peaks


def erp_latency_error(
    pred,
    target,
    times,
    windows: Mapping[str, tuple[float, float]] = ERP_WINDOWS,
    channels: Sequence[int] | None = None,
    reduce: str = "mean",
) -> float:
    """Mean absolute difference of ERP peak latencies, in seconds.

    ``pred`` and ``target``: (n_images, C, T) or (C, T). Peaks are found by
    :func:`erp_peaks` on each grand average; the error is averaged over the
    components in ``windows``. 0 means every peak sits on the same sample.
    """
    pred_peaks = erp_peaks(pred, times, windows, channels, reduce)
    target_peaks = erp_peaks(target, times, windows, channels, reduce)
    return float(np.mean([abs(pred_peaks[c]["latency"] - target_peaks[c]["latency"]) for c in windows]))


def psd_distance(pred, target, sfreq: float, nperseg: int | None = None) -> float:
    """Mean absolute difference of log10 Welch power spectra (decades of power).

    ``pred`` and ``target``: (n_images, C, T), with as many images (or single
    trials) each as you like, or (C, T), at ``sfreq`` Hz. Welch's method
    (Welch 1967) with Hann windows of ``nperseg`` samples (by default half the
    epoch, so three half-overlapping segments are averaged)
    gives a spectrum per image and channel; spectra are averaged over images,
    then ``mean |log10 P_pred(c, f) - log10 P_target(c, f)|`` is taken over
    channels and frequencies above 0 Hz (the 0 Hz bin measures the offset,
    which baseline correction already sets, not oscillations). 0 means equal
    spectra; 1 means power off by a factor of 10 on average.
    """
    pred = as_float_array(pred, "pred")
    target = as_float_array(target, "target")
    if pred.ndim != target.ndim or pred.ndim not in (2, 3) or pred.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"pred and target must have the same shape per image, (n_images, C, T) or (C, T); "
            f"got {pred.shape} and {target.shape}"
        )
    if sfreq <= 0:
        raise ValueError(f"sfreq must be positive (Hz), got {sfreq}")
    n_times = pred.shape[-1]
    nperseg = nperseg or max(n_times // 2, 2)
    if not 2 <= nperseg <= n_times:
        raise ValueError(f"nperseg must be between 2 and the {n_times} time samples, got {nperseg}")
    _, pred_psd = welch(pred, fs=sfreq, nperseg=nperseg, axis=-1)
    _, target_psd = welch(target, fs=sfreq, nperseg=nperseg, axis=-1)
    if pred.ndim == 3:
        pred_psd, target_psd = pred_psd.mean(axis=0), target_psd.mean(axis=0)
    # A floor far below the real power keeps log10 finite for a flat (zero) signal.
    floor = max(1e-12 * max(pred_psd.max(), target_psd.max()), np.finfo(np.float64).tiny)
    log_pred = np.log10(np.maximum(pred_psd[..., 1:], floor))
    log_target = np.log10(np.maximum(target_psd[..., 1:], floor))
    return float(np.mean(np.abs(log_pred - log_target)))


def check_times(times, n_times: int) -> np.ndarray:
    """``times`` (T,) in seconds, checked: one value per time sample, strictly increasing."""
    times = as_float_array(times, "times", ("T",))
    if times.shape[0] != n_times:
        raise ValueError(f"times has {times.shape[0]} values but the signals have {n_times} time samples")
    if n_times > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("times must be strictly increasing (seconds from image onset)")
    return times
