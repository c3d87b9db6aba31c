"""Single trials against single trials: does a generator vary from trial to trial as the brain does?

The readouts of :mod:`~i2b_minimal.method.readouts` score a generator's *mean*
response per image. What a generative model adds over a regression is the
distribution of single trials around that mean, so here generated single
samples are compared with held-out single trials of the same test images:

* ``samples``: (n_images, K, C, T), K generated samples per image;
* ``trials``: (n_images, R, C, T), the R recorded repetitions of those images.

Everything is computed on **residuals**, each trial minus its image's mean
(of the samples for samples, of the trials for trials), so that the means,
which the readouts already score, do not enter. A residual about the mean of
K values has ``(K - 1) / K`` of the trial variance; ``trial_residuals.residuals``
scales it back by ``sqrt(K / (K - 1))``, so K samples and R trials compare fairly.

:func:`compare_single_trials` reports:

* ``dispersion_ratio_min``, ``dispersion_ratio_max``: per channel, the
  variance of samples about their image's mean over that of the trials
  (1: the right spread; 0.5: half the variance), lowest and highest channel;
* ``covariance_distance``: how far apart the spatial covariances of the two
  sets of residuals are (:func:`covariance_distance`);
* ``psd_distance``: the power spectra of the residual single trials, in
  decades (``erp.psd_distance``);
* ``c2st_accuracy``, ``c2st_ci_low``, ``c2st_ci_high``: the classifier
  two-sample test of :mod:`~i2b_minimal.evaluation.c2st` (0.5: a classifier
  cannot tell them apart).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .c2st import c2st
from .erp import psd_distance
from .trial_residuals import residuals, same_images, spatial_covariance


def dispersion_ratio(samples, trials) -> np.ndarray:
    """Per channel, (C,): variance of samples about their image's mean over that of trials about theirs.

    Pooled over images, samples (or trials) and time points; 1 where the
    generator spreads as much as the brain, below 1 where it is too sure.
    """
    samples, trials = _residual_pair(samples, trials)
    return _channel_power(samples) / _channel_power(trials)


def covariance_distance(samples, trials) -> float:
    """Affine-invariant Riemannian distance between the residuals' spatial covariances.

    ``d(A, B) = sqrt(sum_i log(lambda_i)^2)``, with lambda_i the eigenvalues of
    ``B^{-1} A`` (A: samples', B: trials'; Pennec, Fillard & Ayache 2006,
    IJCV 66:41; the metric of Riemannian M/EEG classifiers, Barachant et al.
    2012, IEEE TBME 59:920). Chosen over a Frobenius norm because it is
    unchanged by any invertible linear map of the channels (a re-reference,
    the whitening of MVNN, MEG's very different sensor scales), and it weighs
    a direction of small variance as much as a large one: a covariance off by
    a factor s in every direction is ``sqrt(C) |log s|`` away, and 0 means
    equal. The trials' covariance must be full rank (drop one channel of
    average-referenced EEG); samples with no variance in some direction are
    infinitely far (``inf``).
    """
    samples, trials = _residual_pair(samples, trials)
    try:
        ratios = scipy.linalg.eigh(spatial_covariance(samples), spatial_covariance(trials), eigvals_only=True)
    except np.linalg.LinAlgError as error:
        raise ValueError("the trials' residual covariance is singular (fewer independent channels than "
                         "channels, as in average-referenced EEG); drop a channel") from error
    if ratios.min() <= 1e-12 * ratios.max():  # no variance in some direction, up to rounding
        return float("inf")
    return float(np.sqrt(np.sum(np.log(ratios) ** 2)))


def residual_psd_distance(samples, trials, sfreq: float) -> float:
    """``erp.psd_distance`` of the residual single trials: the spectrum of trial-to-trial variability, in decades."""
    samples, trials = _residual_pair(samples, trials)
    return psd_distance(samples.reshape(-1, *samples.shape[2:]), trials.reshape(-1, *trials.shape[2:]), sfreq)


def compare_single_trials(samples, trials, sfreq: float, seed: int = 0) -> dict[str, float]:
    """All the checks of this module as one flat dict of floats (keys in the module's docstring).

    ``seed`` picks the real trials that the classifier test balances against
    the samples (:func:`~i2b_minimal.evaluation.c2st.c2st`).
    """
    ratio = dispersion_ratio(samples, trials)
    test = c2st(samples, trials, seed=seed)
    return {"dispersion_ratio_min": float(ratio.min()), "dispersion_ratio_max": float(ratio.max()),
            "covariance_distance": covariance_distance(samples, trials),
            "psd_distance": residual_psd_distance(samples, trials, sfreq),
            "c2st_accuracy": test["accuracy"], "c2st_ci_low": test["ci_low"], "c2st_ci_high": test["ci_high"]}


def _residual_pair(samples, trials) -> tuple[np.ndarray, np.ndarray]:
    samples, trials = same_images(samples, trials)
    return residuals(samples, "samples"), residuals(trials, "trials")


def _channel_power(residual: np.ndarray) -> np.ndarray:
    return np.mean(residual**2, axis=(0, 1, 3), dtype=np.float64)
