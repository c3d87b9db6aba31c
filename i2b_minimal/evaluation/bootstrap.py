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

from .erp import check_times

DEFAULT_RESAMPLES = 2000
REDRAWS_PER_PRODUCT = 100  # redraws scored by one matrix product: memory, not results


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

    after = check_times(times, target.shape[2]) >= 0
    if not after.any():
        raise ValueError("no time point at or after 0 s: the score averages the post-stimulus times")
    # Redrawing the images with replacement weights each image by how often it was drawn, so every redraw's
    # correlations come from a few weighted sums (matrix products) instead of copies of the arrays: seconds where
    # the copies took tens of minutes for MEG's 271 sensors x 281 samples. Centring first keeps the sums precise.
    a, b, target = (x[..., after].reshape(*x.shape[:-2], -1) for x in (a, b, target))
    mean = target.mean(axis=0)
    a, b, target = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True), target - mean
    draws = np.random.default_rng(seed).integers(n_images, size=(n_resamples, n_images))
    weights = np.stack([np.bincount(rows, minlength=n_images) for rows in draws]) / n_images
    spread = np.concatenate([_weighted_difference(a, b, target, weights[start:start + REDRAWS_PER_PRODUCT])
                             for start in range(0, n_resamples, REDRAWS_PER_PRODUCT)])
    tail = (1 - level) / 2
    low, high = np.quantile(spread, [tail, 1 - tail])
    everyone = np.full((1, n_images), 1 / n_images)
    return {"difference": float(_weighted_difference(a, b, target, everyone)[0]), "low": float(low),
            "high": float(high)}


def _weighted_difference(a, b, target, weights) -> np.ndarray:
    """Per row of ``weights`` (each summing to 1 over the images): the mean score of stack a minus that of b.

    The score is the correlation across images at every channel and time (flattened here), averaged, with
    each image counted as often as its weight says; 0 where either side does not vary, as ``correlate``.
    """
    target_mean = weights @ target
    target_var = weights @ target**2 - target_mean**2

    def mean_score(stack):
        scores = []
        for prediction in stack:
            mean = weights @ prediction
            var = weights @ prediction**2 - mean**2
            covariance = weights @ (prediction * target) - mean * target_mean
            denominator = np.sqrt(np.clip(var * target_var, 0, None))
            r = np.divide(covariance, denominator, out=np.zeros_like(covariance), where=denominator > 0)
            scores.append(r.mean(axis=1))
        return np.mean(scores, axis=0)

    return mean_score(a) - mean_score(b)


def _stack(predictions, name: str) -> np.ndarray:
    array = np.asarray(predictions, dtype=np.float64)
    if array.ndim == 3:
        return array[None]
    if array.ndim != 4:
        raise ValueError(f"{name} must be (n_images, C, T) or (n_seeds, n_images, C, T), got shape {array.shape}")
    return array
