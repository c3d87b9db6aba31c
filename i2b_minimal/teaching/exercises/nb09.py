"""Notebook 09 (topographies): write the between-subject correlation matrix; which channel carries the N1?"""

from __future__ import annotations

import numpy as np

from . import Case, check_function, unanswered, verdict


def n1_channel(signals, times, ch_names) -> str:
    """The channel with the most negative average value at the N1 latency of the channel-mean ERP.

    ``signals``: (..., C, T), averaged over every leading axis. The N1 latency is
    ``erp.erp_peaks(...)["N1"]["latency"]``: the minimum of the mean over channels
    inside the N1 window.
    """
    from i2b_minimal.evaluation.erp import erp_peaks

    average = np.asarray(signals, dtype=np.float64)
    average = average.reshape(-1, *average.shape[-2:]).mean(axis=0)
    latency = erp_peaks(average, times)["N1"]["latency"]
    column = int(np.argmin(np.abs(np.asarray(times) - latency)))
    return str(ch_names[int(np.argmin(average[:, column]))])


def check_n1_channel(answer, signals, times, ch_names) -> bool | None:
    """``answer``: the channel name (e.g. "Oz") that is most negative at the N1 of ``signals``."""
    if unanswered(answer):
        return None
    expected = n1_channel(signals, times, ch_names)
    given = str(answer).strip()
    if given.lower() not in {name.lower() for name in ch_names}:
        return verdict(False, "", f"answer with one of the channel names: {', '.join(ch_names)}.")
    return verdict(given.lower() == expected.lower(),
                   f"{expected}. Look at the subject grid: another subject's N1 may peak elsewhere, because "
                   "every head and cortex is folded differently.",
                   "find the N1 latency with erp.erp_peaks(...)['N1']['latency'], then the most negative channel "
                   "there; evoked.get_peak(tmin=..., tmax=..., mode='neg') or a topomap with names=True does it too.")


def solution_pattern_correlations(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """r[i, j] = Pearson correlation of ``first[i]`` with ``second[j]``: (S, P) and (S, P) patterns -> (S, S)."""
    ### BEGIN SOLUTION
    a = first - first.mean(axis=1, keepdims=True)  # centre each pattern
    b = second - second.mean(axis=1, keepdims=True)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T
    ### END SOLUTION


def check_pattern_correlations(pattern_correlations) -> bool | None:
    """Compare ``pattern_correlations(first, second)`` with the corner of ``np.corrcoef(first, second)``."""
    rng = np.random.default_rng(9)
    first, second = rng.normal(size=(5, 40)) + 1.0, rng.normal(size=(5, 40))
    expected = np.corrcoef(first, second)[:5, 5:]
    mistakes = [
        ((first - first.mean(1, keepdims=True)) @ (second - second.mean(1, keepdims=True)).T / 39,
         "divide by both patterns' standard deviations: a covariance is not a correlation."),
        (first @ second.T / np.outer(np.linalg.norm(first, axis=1), np.linalg.norm(second, axis=1)),
         "centre each pattern (subtract its mean) before normalising: that is the cosine, not the correlation."),
    ]
    return check_function(pattern_correlations, [Case({"first": first, "second": second}, expected, mistakes)],
                          "one correlation per pair of subjects: half 1 of subject i against half 2 of subject j.")
