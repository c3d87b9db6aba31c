"""Notebook 08 (evaluation): the noise ceiling from a split-half correlation, and the chance levels."""

from __future__ import annotations

import math

from . import as_number, unanswered, verdict

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
