"""A classifier two-sample test: can a classifier tell generated single trials from real ones?

Lopez-Paz & Oquab 2017 (ICLR, "Revisiting classifier two-sample tests"): if two
sets come from one distribution, no classifier beats chance on held-out data,
so its held-out accuracy is a test statistic, 0.5 when the sets are
indistinguishable and 1 when they are always told apart. Here the sets are
generated samples (n_images, K, C, T) and recorded trials (n_images, R, C, T)
of the same test images, and the choices are:

* **Residuals, built alike.** Each image gives m = min(K, R) trials of each
  kind (the real ones drawn at random), so the classes are balanced and
  chance is exactly 0.5; each trial minus the mean of its image's m, so the
  mean response (which the readouts score) is out, and both sides are made
  the same way (a residual about a mean of few trials is more Gaussian than a
  trial, which a classifier could otherwise notice).
* **Second-order features.** Both sides' residuals have mean 0, so a linear
  classifier on the raw samples could see no difference in covariance or
  spectrum, which is where a generator's trials go wrong. Each residual
  trial is described by the log Welch power of each of its top principal
  components (spatial scale and temporal spectrum) and the correlations
  between those components (spatial structure). The components are fitted
  on both sides pooled, without their labels.
* **Logistic regression** on standardised features (scikit-learn), scored by
  cross-validation with **groups = images** (``GroupKFold``): no image is in
  both a training and a test fold, so the classifier cannot win by
  recognising images.
* **A Wilson score interval** (Wilson 1927, JASA 22:209) over the held-out
  predictions. Residuals of one image share its mean, so they are not quite
  independent; read the interval as indicative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import welch
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .trial_residuals import residuals, same_images, spatial_covariance

COMPONENTS = 8  # principal components described per trial: enough for the main spatial patterns, few features
SEGMENT = 32  # Welch segment (samples): 17 frequency bins, a spectrum that is stable on one trial


@dataclass(frozen=True)
class DescribedTrials:
    """The classifier's view of the two sets: one row of ``features`` per residual trial.

    ``labels``: 1 generated, 0 real; ``images``: each row's image (the cross-validation groups);
    ``component``: the principal component a column describes (its power), -1 for a correlation;
    ``frequency_bin``: the Welch bin of a power column (:func:`bin_frequencies`), -1 for a correlation.
    """

    features: np.ndarray
    labels: np.ndarray
    images: np.ndarray
    component: np.ndarray
    frequency_bin: np.ndarray


def c2st(samples, trials, seed: int = 0, n_folds: int = 5) -> dict[str, float]:
    """Held-out accuracy of a classifier telling ``samples`` from ``trials``, with its 95% Wilson interval.

    ``samples``: (n_images, K, C, T); ``trials``: (n_images, R, C, T), the same
    images; K, R >= 2. ``seed`` draws the real trials that balance the samples.
    Returns ``accuracy``, ``ci_low``, ``ci_high`` and ``n_trials`` (the number
    of held-out predictions, both classes together).
    """
    return held_out_accuracy(describe_trials(samples, trials, seed), n_folds)


def describe_trials(samples, trials, seed: int = 0) -> DescribedTrials:
    """The balanced residual trials of both sets (module docstring), described by their second-order features."""
    generated, real = _balanced_residuals(samples, trials, np.random.default_rng(seed))
    n_images, m = generated.shape[:2]
    pooled = np.concatenate([generated, real], axis=1)
    basis = np.linalg.eigh(spatial_covariance(pooled))[1][:, ::-1][:, :COMPONENTS]  # largest variance first
    features = _trial_features(pooled.reshape(-1, *pooled.shape[2:]), basis)
    n_components = basis.shape[1]  # COMPONENTS, or fewer for fewer channels
    n_bins = min(SEGMENT, pooled.shape[-1]) // 2 + 1  # Welch's one-sided bins (:func:`bin_frequencies`)
    correlations = np.full(n_components * (n_components - 1) // 2, -1)
    return DescribedTrials(features=features,
                           labels=np.tile(np.repeat([1, 0], m), n_images),  # 1: generated, 0: real, as pooled
                           images=np.repeat(np.arange(n_images), 2 * m),
                           component=np.concatenate([np.repeat(np.arange(n_components), n_bins), correlations]),
                           frequency_bin=np.concatenate([np.tile(np.arange(n_bins), n_components), correlations]))


def held_out_accuracy(described: DescribedTrials, n_folds: int = 5, columns=None) -> dict[str, float]:
    """:func:`c2st`'s score of ``described``, from all its features or only the ``columns`` (a mask or indices)."""
    n_images = len(np.unique(described.images))
    if n_images < n_folds:
        raise ValueError(f"{n_images} images are too few for {n_folds} folds grouped by image")
    features = described.features if columns is None else described.features[:, columns]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    predicted = cross_val_predict(classifier, features, described.labels, groups=described.images,
                                  cv=GroupKFold(n_folds))
    correct = int(np.sum(predicted == described.labels))
    low, high = wilson_interval(correct, len(described.labels))
    return {"accuracy": correct / len(described.labels), "ci_low": low, "ci_high": high,
            "n_trials": len(described.labels)}


def bin_frequencies(n_times: int, sfreq: float) -> np.ndarray:
    """The frequency (Hz) of each Welch bin of :class:`DescribedTrials` for trials of ``n_times`` samples."""
    return np.fft.rfftfreq(min(SEGMENT, n_times), 1.0 / sfreq)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (Wilson 1927), e.g. an accuracy over n predictions.

    ``(p + z^2 / 2n -+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)``
    with p = successes / n and z the normal quantile of the confidence; unlike
    p -+ z sqrt(p (1 - p) / n) it stays inside [0, 1] and keeps its coverage near 0 and 1.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    z = norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half_width = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return float(centre - half_width), float(centre + half_width)


def _balanced_residuals(samples, trials, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """m = min(K, R) samples and m randomly chosen trials per image, each minus its image's mean of those m."""
    samples, trials = same_images(samples, trials)
    m = min(samples.shape[1], trials.shape[1])
    chosen = np.stack([rng.permutation(trials.shape[1])[:m] for _ in range(trials.shape[0])])
    real = np.take_along_axis(trials, chosen[:, :, None, None], axis=1)
    return residuals(samples[:, :m], "samples"), residuals(real, "trials")


def _trial_features(residual: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(N, k * F + k (k - 1) / 2): log power spectrum of each component, and the components' correlations."""
    components = np.einsum("nct,ck->nkt", residual, basis)
    _, power = welch(components, nperseg=min(SEGMENT, components.shape[-1]), axis=-1)
    log_power = np.log10(np.maximum(power, np.finfo(np.float64).tiny)).reshape(len(components), -1)
    centred = components - components.mean(axis=-1, keepdims=True)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=-1, keepdims=True), np.finfo(np.float64).tiny)
    upper = np.triu_indices(components.shape[1], k=1)
    correlations = np.einsum("nkt,nlt->nkl", unit, unit)[:, upper[0], upper[1]]
    return np.hstack([log_power, correlations])
