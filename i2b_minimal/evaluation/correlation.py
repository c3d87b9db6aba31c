"""Pearson correlation along one axis, and its use as the encoding-model score: correlation across images.

The building blocks that :mod:`~i2b_minimal.evaluation.metrics` (the scores of a
prediction) and :mod:`~i2b_minimal.evaluation.ceilings` (the best score the
noise allows) share. ``metrics`` offers :func:`correlation_across_images` and
:func:`post_stimulus_mean` under its own name too, where the notebooks use them.
"""

from __future__ import annotations

import numpy as np

from i2b_minimal.datasets.arrays import as_float_array

from .erp import check_times

SIGNALS = ("n_images", "C", "T")
SIGNALS_WITH_REPS = ("n_images", "n_reps", "C", "T")


def paired_signals(pred, target) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``target`` as checked (n_images, C, T) arrays of the same shape."""
    pred = as_float_array(pred, "pred", SIGNALS)
    target = as_float_array(target, "target", SIGNALS)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {pred.shape} and target {target.shape} must have the same shape (n_images, C, T); "
            "average target over repetitions first if it has them"
        )
    return pred, target


def correlate(a, b, axis: int) -> np.ndarray:
    """Pearson r along ``axis``; 0 where either input is exactly constant (r undefined)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a_dev = a - a.mean(axis=axis, keepdims=True)
    b_dev = b - b.mean(axis=axis, keepdims=True)
    numerator = (a_dev * b_dev).sum(axis=axis)
    denominator = np.sqrt((a_dev**2).sum(axis=axis) * (b_dev**2).sum(axis=axis))
    defined = (np.ptp(a, axis=axis) > 0) & (np.ptp(b, axis=axis) > 0)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=defined)


def correlation_across_images(pred, target) -> np.ndarray:
    """Correlation across images at every channel and time point, (C, T).

    ``r[c, t] = corr_i(pred[i, c, t], target[i, c, t])``: the encoding-model
    score of Gifford et al. 2022 (NeuroImage 264:119754), computed on test
    data averaged over repetitions. A model that predicts the same
    response for every image scores 0 here, however good its ERP.
    """
    pred, target = paired_signals(pred, target)
    if pred.shape[0] < 3:
        raise ValueError(f"correlation across images needs at least 3 images, got {pred.shape[0]}")
    return correlate(pred, target, axis=0)


def post_stimulus_mean(values, times, tmin: float = 0.0) -> float:
    """Mean of a (C, T) map over all channels and the time points ``t >= tmin`` (s).

    The summary used for :func:`correlation_across_images` and the noise
    ceilings: before image onset the brain has nothing to say about the image,
    so those samples would only dilute the average toward 0.
    """
    values = as_float_array(values, "values", ("C", "T"))
    after = check_times(times, values.shape[1]) >= tmin
    if not after.any():
        raise ValueError(f"no time point at or after tmin={tmin} s")
    return float(values[:, after].mean())
