"""Multivariate noise normalisation (MVNN), as THINGS-EEG2's preprocessing whitens its epochs.

Guggenmos et al. 2018 (NeuroImage 173:434) showed that decoding and RSA on M/EEG work best
when the channels are first whitened by an estimate of the noise covariance.
Gifford et al. 2022 (NeuroImage 264:119754) apply this to THINGS-EEG2, separately in
each recording session:

1. for every image condition and every time point, the covariance of the channels
   across that image's repetitions (its trials' spread about their own mean is noise),
   shrunk towards its diagonal as scikit-learn's LDA does with ``shrinkage="auto"``:
   the channels are standardised, Ledoit & Wolf's (2004) optimal shrinkage is applied,
   and the result is scaled back (:func:`_ledoit_wolf`);
2. these covariances are averaged over time points and image conditions, and the
   training and test partitions' averages are averaged (:func:`noise_covariance`);
3. every trial is multiplied by the inverse matrix square root of that mean
   (:func:`inverse_sqrt`, :func:`whiten`).

With a handful of repetitions per image the shrinkage is strong and the covariance
estimated from ``n`` trials about their own mean is smaller than the noise's by
``(n - 1) / n``, so the whitened noise is close to, not exactly, uncorrelated with unit
variance: the same is true of the published data. Only the simulated world uses this
module: the package reads THINGS-EEG2 after this step and never preprocesses raw EEG.
"""

from __future__ import annotations

import numpy as np


def _ledoit_wolf(samples: np.ndarray):
    """Ledoit-Wolf shrinkage of each block of ``samples`` (..., n, C) with its channels standardised.

    Returns ``(shrinkage, mu, scale, centred)``: the block's shrunk covariance, scaled back,
    is ``(1 - shrinkage) * centred' centred / n + shrinkage * mu * diag(scale**2)``. That is
    scikit-learn's ``StandardScaler`` (population standard deviation ``scale``), then
    ``ledoit_wolf``, then the scaling back, written out from Ledoit & Wolf (2004) as
    scikit-learn computes it, and vectorised over the leading axes: THINGS-EEG2's
    training set alone has 16540 images x 100 time points of blocks.
    """
    n, p = samples.shape[-2:]
    centred = samples - samples.mean(axis=-2, keepdims=True)
    variance = np.mean(centred**2, axis=-2)
    scale = np.sqrt(np.where(variance == 0, 1.0, variance))  # a constant channel stays unscaled, as in StandardScaler
    z = centred / scale[..., None, :]
    # The squared entries of z's empirical covariance Z'Z / n sum to those of the Gram matrix ZZ' / n
    # (the same Frobenius norm): the smaller of the two is cheaper, n x n for a few repetitions.
    gram = z @ np.swapaxes(z, -1, -2) if n < p else np.swapaxes(z, -1, -2) @ z
    squared = np.sum(gram**2, axis=(-2, -1)) / n**2
    row_norms = np.sum(z**2, axis=-1)
    mu = row_norms.sum(axis=-1) / (n * p)  # the trace over p: the shrinkage target is mu * identity
    # Ledoit & Wolf's estimate of the empirical covariance's squared error (beta) against its
    # squared distance from the target (delta); the optimal shrinkage is their ratio, at most 1.
    beta = (np.sum(row_norms**2, axis=-1) / n - squared) / (p * n)
    delta = (squared - p * mu**2) / p
    beta = np.minimum(beta, delta)
    shrinkage = np.divide(beta, delta, out=np.zeros_like(beta), where=beta != 0)
    return shrinkage, mu, scale, centred


def noise_covariance(partitions, chunk: int = 256) -> np.ndarray:
    """The MVNN noise covariance (C, C) of one session's partitions, each (images, repetitions, C, T).

    Per partition the mean, over image conditions and time points, of the shrunk covariance
    of the channels across the repetitions (:func:`_ledoit_wolf`); then the mean over the
    partitions (each counts once, whatever its size).
    """
    means = []
    for signals in partitions:
        n_images, n_reps, n_channels, n_times = signals.shape
        total = np.zeros((n_channels, n_channels))
        for start in range(0, n_images, chunk):  # bounds the memory of the blocks
            by_time = np.moveaxis(np.asarray(signals[start:start + chunk], dtype=np.float64), 3, 1)
            shrinkage, mu, scale, centred = _ledoit_wolf(by_time)  # blocks: (images, T) x (repetitions, C)
            # The sum of the blocks' (1 - s) centred' centred / n is one product of the weighted rows.
            rows = (centred * np.sqrt(1 - shrinkage)[..., None, None]).reshape(-1, n_channels)
            total += rows.T @ rows / n_reps
            total[np.diag_indices(n_channels)] += np.sum((shrinkage * mu)[..., None] * scale**2, axis=(0, 1))
        means.append(total / (n_images * n_times))
    return np.mean(means, axis=0)


def inverse_sqrt(covariance: np.ndarray) -> np.ndarray:
    """The symmetric inverse square root ``Sigma^(-1/2)`` of a covariance matrix, from its eigendecomposition."""
    values, vectors = np.linalg.eigh(covariance)
    if values.min() <= 0:
        raise ValueError(f"the covariance is not positive definite (smallest eigenvalue {values.min():.3g})")
    return (vectors / np.sqrt(values)) @ vectors.T


def whiten(whitening: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """``whitening @ x(t)`` for every trial and time point of ``signals`` (..., C, T)."""
    return np.einsum("dc,...ct->...dt", whitening, signals, optimize=True)
