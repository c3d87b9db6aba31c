"""How sure is a difference of two scores? A paired bootstrap over the test images.

Two encoding models scored on the same 100 test images differ by a few
hundredths of correlation; whether that is more than the luck of which 100
images were drawn is what a confidence interval says. The bootstrap (Efron &
Tibshirani 1993, ch. 13, the percentile interval) redraws the test images with
replacement, scores both models on each redraw, and reads the interval off
the spread of the differences. It is **paired**: both models see the same
redrawn images, so what is hard about an image for both cancels in their
difference (the images are the unit that was sampled, not the channels or
time points, which are correlated with each other).

Several seeds of a model (several trainings) enter as a stack: on each redraw
a model's score is the mean over its seeds, so the interval covers the image
sampling of the mean-over-seeds score. The spread between seeds is reported
beside it (``benchmarks/quality.py``), not folded into it.
"""

from __future__ import annotations

import numpy as np

from .correlation import correlate, post_stimulus_mean

DEFAULT_RESAMPLES = 2000


def corr_difference_interval(predictions_a, predictions_b, target, times, n_resamples: int = DEFAULT_RESAMPLES,
                             level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """The difference in correlation across images, a minus b, with its paired-bootstrap percentile interval.

    ``predictions_a`` and ``predictions_b``: (n_images, C, T) predictions, or
    (n_seeds, n_images, C, T) stacks of them (the score of a stack is the mean
    of its seeds' scores); ``target``: (n_images, C, T), the test data averaged
    over repetitions; the score is the correlation across images averaged over
    channels and the times ``>= 0`` (``metrics.evaluate``'s). Returns
    ``{"difference", "low", "high"}``, the interval at ``level``.
    """
    a, b = _stack(predictions_a, "predictions_a"), _stack(predictions_b, "predictions_b")
    target = np.asarray(target, dtype=np.float64)
    if a.shape[1:] != target.shape or b.shape[1:] != target.shape:
        raise ValueError(f"predictions {a.shape[1:]} and {b.shape[1:]} must each match the target {target.shape} "
                         "(n_images, C, T)")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    n_images = target.shape[0]
    if n_images < 3:
        raise ValueError(f"a bootstrap over images needs at least 3 images, got {n_images}")

    def difference(rows):
        return _mean_score(a[:, rows], target[rows], times) - _mean_score(b[:, rows], target[rows], times)

    draws = np.random.default_rng(seed).integers(n_images, size=(n_resamples, n_images))
    spread = np.array([difference(rows) for rows in draws])
    tail = (1 - level) / 2
    low, high = np.quantile(spread, [tail, 1 - tail])
    return {"difference": float(difference(np.arange(n_images))), "low": float(low), "high": float(high)}


def _stack(predictions, name: str) -> np.ndarray:
    array = np.asarray(predictions, dtype=np.float64)
    if array.ndim == 3:
        return array[None]
    if array.ndim != 4:
        raise ValueError(f"{name} must be (n_images, C, T) or (n_seeds, n_images, C, T), got shape {array.shape}")
    return array


def _mean_score(stack: np.ndarray, target: np.ndarray, times) -> float:
    """The mean over seeds of the post-stimulus correlation across images."""
    return float(np.mean([post_stimulus_mean(correlate(p, target, axis=0), times) for p in stack]))
