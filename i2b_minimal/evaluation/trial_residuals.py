"""Residual single trials: each trial minus its image's mean, and the spatial covariance of such residuals.

What :mod:`~i2b_minimal.evaluation.single_trial` and :mod:`~i2b_minimal.evaluation.c2st`
look at: the trial-to-trial variability, with the mean response (scored by the
readouts) taken out.
"""

from __future__ import annotations

import math

import numpy as np

from i2b_minimal.datasets.arrays import as_float_array

TRIALS = ("n_images", "n_trials", "C", "T")


def same_images(samples, trials) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` (n_images, K, C, T) and ``trials`` (n_images, R, C, T) checked to be of the same images."""
    samples = as_float_array(samples, "samples", TRIALS)
    trials = as_float_array(trials, "trials", TRIALS)
    if samples.shape[0] != trials.shape[0] or samples.shape[2:] != trials.shape[2:]:
        raise ValueError(f"samples {samples.shape} and trials {trials.shape} must be of the same images and have "
                         "the same channels and times: (n_images, K, C, T) and (n_images, R, C, T)")
    return samples, trials


def residuals(x, name: str = "trials") -> np.ndarray:
    """(n_images, K, C, T) trials minus their image's mean over the K, times ``sqrt(K / (K - 1))``.

    The scaling makes each residual's expected covariance the trial-to-trial
    covariance itself, whatever K, when the K trials are independent draws.
    ``name`` names ``x`` in errors.
    """
    x = as_float_array(x, name, TRIALS)
    k = x.shape[1]
    if k < 2:
        raise ValueError(f"single-trial checks need at least 2 {name} per image to see their spread, got {k}")
    return (x - x.mean(axis=1, keepdims=True)) * math.sqrt(k / (k - 1))  # a Python float keeps float32 float32


def spatial_covariance(residual) -> np.ndarray:
    """(C, C) covariance of the channels over every image, trial and time point of ``residual`` (n, K, C, T)."""
    n, k, c, t = residual.shape
    return np.einsum("nkct,nkdt->cd", residual, residual, optimize=True) / (n * k * t)
