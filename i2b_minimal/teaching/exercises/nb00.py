"""Notebook 00 (welcome): how big is one generated brain response?"""

from __future__ import annotations

from . import as_shape, unanswered, verdict

# One THINGS-EEG2 epoch: 17 posterior electrodes x 100 samples (-0.2 to 0.79 s at 100 Hz), Gifford et al. 2022.
# One THINGS-MEG epoch: 271 CTF magnetometers x 281 samples (-0.1 to 1.3 s at 200 Hz), Hebart et al. 2023.
EEG_SHAPE = (17, 100)
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
