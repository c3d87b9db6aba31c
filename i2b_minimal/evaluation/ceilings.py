"""Noise ceilings: how well the best possible model could correlate with noisy recordings.

``signals`` are the test repetitions, (n_images, n_reps, C, T). Every ceiling
here is a map over channels and time, (C, T), of the correlation across images
(:func:`~i2b_minimal.evaluation.correlation.correlation_across_images`), and each
is named for what it is:

* :func:`noise_ceiling_gifford`: the protocol of Gifford et al. 2022
  (NeuroImage 264:119754, "Noise ceiling calculation"): random halves of the
  repetitions, a lower and an upper bound, and the model scored against one
  half (:func:`gifford_score`). Use it to compare with published THINGS-EEG2
  numbers.
* :func:`noise_ceiling`: a split-half reliability stepped up to all repetitions
  by Spearman-Brown, the ceiling of a model scored against the average of *all*
  repetitions, as :func:`~i2b_minimal.evaluation.metrics.evaluate` scores.
* :func:`true_noise_ceiling`: measured directly, where a simulation knows the
  noiseless responses.

Both estimates draw their random halves from :func:`random_halves`, so one seed
gives the same splits to both.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from tqdm.auto import tqdm

from i2b_minimal.datasets.arrays import as_float_array

from .correlation import SIGNALS, SIGNALS_WITH_REPS, correlate, correlation_across_images, post_stimulus_mean


def spearman_brown(r, factor: float):
    """Reliability of a measurement ``factor`` times as long (Spearman 1910; Brown 1910).

    ``r_k = k r / (1 + (k - 1) r)``; for split halves, k = 2 gives ``2 r / (1 + r)``.
    """
    r = np.asarray(r, dtype=np.float64)
    return factor * r / (1.0 + (factor - 1.0) * r)


def random_halves(n_reps: int, n_splits: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` random splits of the repetitions into two disjoint halves of ``n_reps // 2`` each.

    Yields (half 1, half 2) index arrays; when ``n_reps`` is odd one repetition
    sits out of both halves, so the two averages are equally noisy.
    """
    if n_splits < 1:
        raise ValueError(f"the number of splits must be at least 1, got {n_splits}")
    rng = np.random.default_rng(seed)
    half = n_reps // 2
    for _ in range(n_splits):
        order = rng.permutation(n_reps)
        yield order[:half], order[half : 2 * half]


def noise_ceiling_gifford(signals, n_iterations: int = 100, seed: int = 0, progress: bool = True) -> dict:
    """Gifford et al. 2022's noise ceiling: ``{"lower": (C, T), "upper": (C, T)}``.

    In each of ``n_iterations`` iterations the repetitions are split at random
    into two halves (:func:`random_halves`) and averaged within each half. Then,
    at every channel and time point, across images:

    * lower bound: ``corr(half 1, half 2)``, the agreement of two independent
      half-averages; the noiseless response scores its square root against
      half 1 (Spearman 1904), so at least this;
    * upper bound: ``corr(all repetitions, half 1)``: the average of all
      repetitions contains half 1's own noise, so it beats any model;

    both averaged over the iterations. A model's score under this protocol is
    :func:`gifford_score`, its correlation with half 1, which is what the two
    bounds bracket. ``progress`` shows a bar over the iterations.
    """
    signals = _check_repetitions(signals)
    everything = signals.mean(axis=1, dtype=np.float64)
    lower = np.zeros(signals.shape[2:])
    upper = np.zeros(signals.shape[2:])
    splits = random_halves(signals.shape[1], n_iterations, seed)
    for first, second in tqdm(splits, total=n_iterations, desc="Gifford ceiling", disable=not progress, leave=False):
        half_1 = _mean_of_repetitions(signals, first)
        lower += correlate(half_1, _mean_of_repetitions(signals, second), axis=0)
        upper += correlate(everything, half_1, axis=0)
    return {"lower": lower / n_iterations, "upper": upper / n_iterations}


def gifford_score(pred, signals, n_iterations: int = 100, seed: int = 0) -> np.ndarray:
    """A prediction scored as Gifford et al. 2022 score it: ``corr_i(pred, half 1)``, (C, T).

    ``pred``: (n_images, C, T). The correlation across images with the half-1
    average of each split of :func:`noise_ceiling_gifford` (the same splits for
    the same ``n_iterations`` and ``seed``), averaged over the splits.
    """
    signals = _check_repetitions(signals)
    pred = as_float_array(pred, "pred", SIGNALS)
    score = np.zeros(signals.shape[2:])
    for first, _ in random_halves(signals.shape[1], n_iterations, seed):
        score += correlation_across_images(pred, _mean_of_repetitions(signals, first))
    return score / n_iterations


def noise_ceiling(signals, n_splits: int = 100, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Split-half noise ceiling with the Spearman-Brown step, per channel and time, (C, T).

    The ceiling of a model scored against the average of *all* n_reps
    repetitions (how :func:`~i2b_minimal.evaluation.metrics.evaluate` scores;
    not Gifford et al.'s protocol, for which see :func:`noise_ceiling_gifford`):

    1. Split the repetitions at random into two halves of ``h = n_reps // 2``
       (:func:`random_halves`); average each half.
    2. Correlate the two half-averages across images at every (c, t); average
       these correlations over ``n_splits`` random splits: ``r_half``.
    3. Spearman-Brown: the reliability of the average of all n_reps is
       ``rel = spearman_brown(r_half, n_reps / h)`` (``2 r / (1 + r)`` for halves).
    4. The ceiling is ``sqrt(rel)``.

    Why the square root: ``rel`` is the correlation between *two* independent
    n_reps-averages. A model is scored against *one* of them, and even a
    model that predicts the noiseless response S exactly only reaches
    ``corr(S, S + noise) = sqrt(rel)`` (Spearman's 1904 correction for
    attenuation: no predictor correlates with a measurement better than the
    square root of its reliability). That is what this returns,
    so it compares directly with ``correlation_across_images`` of a model
    against the repetition-averaged test data, and :func:`true_noise_ceiling`
    checks it on simulated data. Where ``rel < 0`` (no signal, e.g. before
    stimulus onset) we return ``-sqrt(-rel)``, so that averages of pure
    noise stay near 0 instead of being pushed up by clipping. ``progress``
    shows a bar over the splits (a THINGS-MEG test set takes about a second each).
    """
    signals = _check_repetitions(signals)
    n_reps = signals.shape[1]
    r_half = np.zeros(signals.shape[2:])
    splits = random_halves(n_reps, n_splits, seed)
    for first, second in tqdm(splits, total=n_splits, desc="noise ceiling splits", disable=not progress, leave=False):
        r_half += correlate(_mean_of_repetitions(signals, first), _mean_of_repetitions(signals, second), axis=0)
    reliability = spearman_brown(r_half / n_splits, n_reps / (n_reps // 2))
    return np.sign(reliability) * np.sqrt(np.abs(reliability))


def true_noise_ceiling(ground_truth, signals) -> np.ndarray:
    """The ceiling measured directly: corr across images of the noiseless response and the data.

    ``ground_truth``: (n_images, C, T), the response without noise (only a
    simulation knows it, e.g. ``synthetic.load_ground_truth``); ``signals``:
    (n_images, n_reps, C, T). Returns (C, T) ``corr_i(S[i, c, t],
    mean_reps(signals)[i, c, t])``, the score of a perfect model. It is what
    :func:`noise_ceiling` estimates from the data alone.
    """
    ground_truth = as_float_array(ground_truth, "ground_truth", SIGNALS)
    signals = as_float_array(signals, "signals", SIGNALS_WITH_REPS)
    return correlation_across_images(ground_truth, signals.mean(axis=1, dtype=np.float64))


def noise_ceiling_summary(
    signals, times, n_splits: int = 100, seed: int = 0, tmin: float = 0.0, progress: bool = True
) -> float:
    """:func:`noise_ceiling` averaged like ``evaluate()["corr_across_images"]``, one float."""
    return post_stimulus_mean(noise_ceiling(signals, n_splits, seed, progress), times, tmin)


def noise_ceiling_gifford_summary(
    signals, times, n_iterations: int = 100, seed: int = 0, tmin: float = 0.0, progress: bool = True
) -> dict[str, float]:
    """:func:`noise_ceiling_gifford` averaged over channels and ``t >= tmin``: ``{"lower": float, "upper": float}``."""
    bounds = noise_ceiling_gifford(signals, n_iterations, seed, progress)
    return {name: post_stimulus_mean(bound, times, tmin) for name, bound in bounds.items()}


def _check_repetitions(signals) -> np.ndarray:
    signals = as_float_array(signals, "signals", SIGNALS_WITH_REPS)
    n_images, n_reps = signals.shape[:2]
    if n_reps < 2:
        raise ValueError(
            f"the noise ceiling needs repeated presentations; signals has n_reps={n_reps}. "
            "Use the test split (THINGS-EEG2: 80 repetitions, THINGS-MEG: 12)"
        )
    if n_images < 3:
        raise ValueError(f"the noise ceiling needs at least 3 images, got {n_images}")
    return signals


def _mean_of_repetitions(signals: np.ndarray, reps: np.ndarray) -> np.ndarray:
    # One repetition at a time, so a large MEG test set is never copied whole.
    total = np.zeros((signals.shape[0], *signals.shape[2:]))
    for rep in reps:
        total += signals[:, rep]
    return total / len(reps)
