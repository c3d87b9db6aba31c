"""Notebook 01 (data and the simulated brain): averaging repetitions, and which hemisphere answers."""

from __future__ import annotations

from . import as_number, unanswered, verdict


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
