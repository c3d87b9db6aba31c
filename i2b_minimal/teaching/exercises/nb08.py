"""Notebook 08 (evaluation): write the split-half noise ceiling; the ceiling from one correlation; chance levels."""

from __future__ import annotations

import math

import numpy as np

from . import Case, as_number, check_function, unanswered, verdict

SPLIT_HALF_R = 0.5  # the split-half correlation the exercise gives


def reliability_and_ceiling(split_half_r: float = SPLIT_HALF_R) -> tuple[float, float]:
    """Spearman-Brown for halves, 2 r / (1 + r), and the ceiling, its square root (``metrics.noise_ceiling``)."""
    reliability = 2 * split_half_r / (1 + split_half_r)
    return reliability, math.sqrt(reliability)


def check_noise_ceiling(reliability, ceiling) -> bool | None:
    """The reliability of the full average and the noise ceiling, for a split-half correlation of 0.5."""
    if unanswered(reliability, ceiling):
        return None
    expected_reliability, expected_ceiling = reliability_and_ceiling()
    reliability, ceiling = as_number(reliability), as_number(ceiling)
    if reliability is None or not math.isclose(reliability, expected_reliability, abs_tol=5e-3):
        return verdict(False, "", "the average of all repetitions is twice as long as a half: Spearman-Brown with "
                       "factor 2 gives 2 r / (1 + r) (metrics.spearman_brown(r, 2)).")
    if ceiling is None or not math.isclose(ceiling, expected_ceiling, abs_tol=5e-3):
        return verdict(False, "", "the reliability is the correlation between two full averages; a perfect model is "
                       "scored against one of them, which caps it at the square root of the reliability.")
    return verdict(True, f"reliability {expected_reliability:.3f}, ceiling {expected_ceiling:.3f}: even a perfect "
                   "model cannot correlate better than that with noisy test data.", "")


def check_chance_levels(two_way, top1, n_images: int) -> bool | None:
    """Chance accuracy of 2-way and of top-1 identification among ``n_images`` test images."""
    if unanswered(two_way, top1):
        return None
    two_way, top1 = as_number(two_way), as_number(top1)
    if two_way is None or not math.isclose(two_way, 0.5, abs_tol=1e-3):
        return verdict(False, "", "2-way identification picks between two images: the right one and one other.")
    if top1 is None or not math.isclose(top1, 1 / n_images, rel_tol=1e-2):
        return verdict(False, "", f"top-1 identification picks one image out of all {n_images} test images.")
    return verdict(True, f"2-way: 0.5 whatever the test set; top-1: 1/{n_images} = {1 / n_images:.3f}, so top-1 "
                   "scores from test sets of different sizes cannot be compared directly.", "")


def solution_split_half_ceiling(half_1: np.ndarray, half_2: np.ndarray) -> np.ndarray:
    """The noise ceiling (C, T) from two half-averages (n_images, C, T) of the repetitions.

    At every channel and time: r = the correlation across images of the two halves;
    the reliability of the full average is Spearman-Brown's 2 r / (1 + r); the
    ceiling is its square root (r > 0 here).
    """
    ### BEGIN SOLUTION
    a = half_1 - half_1.mean(axis=0)  # centre across images, at every (channel, time)
    b = half_2 - half_2.mean(axis=0)
    r = (a * b).sum(axis=0) / np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))  # (C, T)
    reliability = 2 * r / (1 + r)  # Spearman-Brown: the average of both halves is twice as long
    return np.sqrt(reliability)
    ### END SOLUTION


def check_split_half_ceiling(split_half_ceiling) -> bool | None:
    """Compare ``split_half_ceiling(half_1, half_2)`` with ``metrics.noise_ceiling`` for one split of random data."""
    from i2b_minimal.evaluation.ceilings import noise_ceiling, random_halves
    from i2b_minimal.evaluation.correlation import correlate

    rng = np.random.default_rng(8)
    # 60 images x 8 repetitions x 4 channels x 10 times: a response per image plus noise, r_half about 0.5.
    signals = rng.normal(size=(60, 1, 4, 10)) + rng.normal(scale=2.0, size=(60, 8, 4, 10))
    first, second = next(random_halves(8, n_splits=1, seed=0))
    half_1, half_2 = signals[:, first].mean(axis=1), signals[:, second].mean(axis=1)
    r = correlate(half_1, half_2, axis=0)
    mistakes = [
        (np.sqrt(r), "step the split-half r up with Spearman-Brown, 2 r / (1 + r), before the square root: the "
         "full average has twice the repetitions of a half."),
        (2 * r / (1 + r), "take the square root of the reliability: a model is scored against one noisy average, "
         "which caps its correlation at sqrt(reliability)."),
        (r, "r is the reliability of a half; step it up with Spearman-Brown and take the square root."),
    ]
    expected = noise_ceiling(signals, n_splits=1, seed=0, progress=False)
    return check_function(split_half_ceiling, [Case({"half_1": half_1, "half_2": half_2}, expected, mistakes)],
                          "your ceiling matches metrics.noise_ceiling for this split; the library averages r over "
                          "100 random splits before stepping it up, which steadies the estimate.")
