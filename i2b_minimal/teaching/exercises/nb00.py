"""Notebook 00 (welcome): write the time axis; how big is one generated brain response?"""

from __future__ import annotations

import numpy as np

from . import Case, as_shape, check_function, unanswered, verdict

# One THINGS-EEG2 epoch: 17 posterior electrodes x 100 samples (-0.2 to 0.79 s at 100 Hz), Gifford et al. 2022.
# One THINGS-MEG epoch: 271 CTF magnetometers x 281 samples (-0.1 to 1.3 s at 200 Hz), Hebart et al. 2023.
EEG_SHAPE = (17, 100)
EEG_TMIN, EEG_SFREQ = -0.2, 100.0
MEG_SHAPE = (271, 281)


def check_signal_shapes(eeg_shape, meg_shape) -> bool | None:
    """(channels, times) of one response the model generates, for THINGS-EEG2 and for THINGS-MEG."""
    if unanswered(eeg_shape, meg_shape):
        return None
    eeg, meg = as_shape(eeg_shape), as_shape(meg_shape)
    if eeg != EEG_SHAPE:
        return verdict(False, "", "read the EEG shape off the data: bd.signals has shape "
                       "(images, repetitions, channels, times); keep the last two, as a tuple.")
    if meg != MEG_SHAPE:
        return verdict(False, "", "THINGS-MEG has 271 magnetometers, sampled at 200 Hz from -0.1 to 1.3 s "
                       "(count both ends: 1.4 s x 200 Hz + 1 samples).")
    return verdict(True, f"EEG {EEG_SHAPE} = {EEG_SHAPE[0] * EEG_SHAPE[1]:,} numbers per image, MEG {MEG_SHAPE} = "
                   f"{MEG_SHAPE[0] * MEG_SHAPE[1]:,}: the model writes a whole channels x time picture.", "")


def solution_sample_times(tmin: float, sfreq: float, n_times: int) -> np.ndarray:
    """The time (s) of each of ``n_times`` samples taken at ``sfreq`` Hz, the first at ``tmin``."""
    ### BEGIN SOLUTION
    return tmin + np.arange(n_times) / sfreq  # one sample every 1 / sfreq seconds
    ### END SOLUTION


def check_sample_times(sample_times, times=None) -> bool | None:
    """Compare ``sample_times(tmin, sfreq, n_times)`` with a record's ``times`` (default: THINGS-EEG2's axis)."""
    times = np.asarray(times if times is not None else EEG_TMIN + np.arange(EEG_SHAPE[1]) / EEG_SFREQ)
    sfreq = float(round(1 / (times[1] - times[0])))
    inputs = {"tmin": float(times[0]), "sfreq": sfreq, "n_times": len(times)}
    mistakes = [(np.linspace(times[0], times[0] + len(times) / sfreq, len(times)),
                 "the last sample is (n_times - 1) / sfreq after the first, not n_times / sfreq.")]
    return check_function(sample_times, [Case(inputs, times, mistakes)],
                          f"{len(times)} samples at {sfreq:g} Hz from {times[0]:g} s end at {times[-1]:g} s: "
                          "counting both ends, (end - start) x sfreq + 1 samples.")
