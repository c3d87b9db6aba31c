"""Notebook 01 (data and the simulated brain): write the ERP; averaging repetitions; which hemisphere answers."""

from __future__ import annotations

import numpy as np

from . import Case, as_number, check_function, unanswered, verdict


def check_repetitions_to_double_snr(n_repetitions) -> bool | None:
    """How many repetitions must be averaged to double the single-trial signal-to-noise ratio? (4)

    The evoked response is the same in every repetition; independent noise
    averages down, its standard deviation falling as 1/sqrt(n). The amplitude
    SNR therefore grows as sqrt(n), and doubling it takes n = 4.
    """
    if unanswered(n_repetitions):
        return None
    value = as_number(n_repetitions)
    return verdict(value == 4, "The noise standard deviation falls as 1/sqrt(n), so the SNR grows as sqrt(n): "
                   "sqrt(4) = 2. THINGS-EEG2's 80 test repetitions buy a factor of about 9.",
                   "the signal stays the same in every repetition, but the noise of n independent trials "
                   "averages down: its standard deviation falls as 1/sqrt(n). Solve sqrt(n) = 2.")


def check_contralateral(hemisphere) -> bool | None:
    """Which hemisphere responds more strongly to a picture on the left of fixation? ("right")"""
    if unanswered(hemisphere):
        return None
    answer = str(hemisphere).strip().lower()
    answer = answer.removesuffix(" hemisphere")
    return verdict(answer == "right", "Early visual cortex is retinotopic and crossed: the left visual field "
                   "projects to the right hemisphere (P4, P8, O2, PO8 on the scalp).",
                   "answer 'left' or 'right'. Compare the mean of the left electrodes (odd numbers: P7, PO7, O1) "
                   "with the right ones (even numbers: P8, PO8, O2) for left-side pictures, around 100 ms.")


def solution_erp(signals: np.ndarray) -> np.ndarray:
    """The event-related potential (C, T): ``signals`` (n_images, n_reps, C, T) averaged over repetitions and images."""
    ### BEGIN SOLUTION
    return signals.mean(axis=1).mean(axis=0)  # each picture's average response, then their average
    ### END SOLUTION


def check_erp(erp) -> bool | None:
    """Compare ``erp(signals)`` with the mean over the first two axes, on random signals (12, 4, 17, 100)."""
    signals = np.random.default_rng(1).normal(size=(12, 4, 17, 100)).astype(np.float32)
    mistakes = [(signals[:, 0].mean(axis=0), "average every repetition (axis 1), not only the first one.")]
    return check_function(erp, [Case({"signals": signals}, signals.mean(axis=(0, 1)), mistakes)],
                          "the ERP is the average over repetitions (the noise shrinks as 1/sqrt(n)) and over "
                          "pictures: one (channels, times) curve per channel.")
