"""How good is a generated brain signal? Error, correlation, noise ceiling, identification.

Shapes: ``pred`` is (n_images, C, T), one generated signal per test image;
``target`` is the recorded response to the same images, either
(n_images, C, T) or with its repetitions, (n_images, n_reps, C, T).

Three families of scores, each answering its own question:

* **Like the paper** (Xu, Long & Zhang, arXiv 2509.00787): MSE and the
  Pearson correlation between each generated signal and the real one.
* **Like an encoding model** (Gifford et al. 2022, NeuroImage 264:119754):
  the correlation *across images* at every channel and time, which asks
  whether the model knows how image A's response differs from image B's,
  and the noise ceiling, the best correlation that the noise in the
  recording allows.
* **Identification** (Kay et al. 2008, Nature 452:352): can the generated
  signal tell which of the test images was seen?

ERP and spectrum checks, the fourth family, live in :mod:`i2b_minimal.evaluation.erp`;
:func:`evaluate` gathers all four.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tqdm.auto import tqdm

from i2b_minimal.datasets.arrays import as_float_array

from .erp import ERP_WINDOWS, check_times, erp_latency_error, psd_distance

__all__ = [
    "mse", "pearson", "correlation_across_images", "spearman_brown", "noise_ceiling",
    "true_noise_ceiling", "post_stimulus_mean", "noise_ceiling_summary", "identification_2way",
    "identification_top1", "evaluate",
]

SIGNALS = ("n_images", "C", "T")
SIGNALS_WITH_REPS = ("n_images", "n_reps", "C", "T")


def mse(pred, target) -> float:
    """Mean squared error over every image, channel and time, as arXiv 2509.00787 reports it.

    ``pred`` and ``target``: (n_images, C, T). In the units of the data squared;
    for whitened THINGS-EEG2 data, 1.0 is roughly the variance of the signal.
    """
    pred, target = _pair(pred, target)
    return float(np.mean((pred - target) ** 2))


def pearson(pred, target, per_channel: bool = False) -> float | np.ndarray:
    """The paper's PCC: correlation over time between a generated and a real signal.

    arXiv 2509.00787 reports "the Pearson correlation coefficient between
    generated and real signals" without a formula. Our reading, for
    ``pred`` and ``target`` (n_images, C, T):

        r[i, c] = corr_t(pred[i, c, :], target[i, c, :])   (Pearson over the T samples)
        PCC = mean over images i and channels c of r[i, c]

    So it rewards the right *waveform* per image and channel. Because every
    image evokes a similar ERP, even an image-blind model scores well here;
    :func:`correlation_across_images` is the score that needs the image.
    ``per_channel=True`` returns the (C,) means over images instead. A time
    course that is exactly flat has no correlation; it counts as 0.
    """
    pred, target = _pair(pred, target)
    r = _correlate(pred, target, axis=-1)  # (n_images, C)
    return r.mean(axis=0) if per_channel else float(r.mean())


def correlation_across_images(pred, target) -> np.ndarray:
    """Correlation across images at every channel and time point, (C, T).

    ``r[c, t] = corr_i(pred[i, c, t], target[i, c, t])``: the encoding-model
    score of Gifford et al. 2022 (NeuroImage 264:119754), computed on test
    data averaged over repetitions. A model that predicts the same
    response for every image scores 0 here, however good its ERP.
    """
    pred, target = _pair(pred, target)
    if pred.shape[0] < 3:
        raise ValueError(f"correlation across images needs at least 3 images, got {pred.shape[0]}")
    return _correlate(pred, target, axis=0)


def spearman_brown(r, factor: float):
    """Reliability of a measurement ``factor`` times as long (Spearman 1910; Brown 1910).

    ``r_k = k r / (1 + (k - 1) r)``; for split halves, k = 2 gives ``2 r / (1 + r)``.
    """
    r = np.asarray(r, dtype=np.float64)
    return factor * r / (1.0 + (factor - 1.0) * r)


def noise_ceiling(signals, n_splits: int = 100, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Noise ceiling of the correlation across images, per channel and time, (C, T).

    ``signals``: (n_images, n_reps, C, T), n_reps >= 2. Gifford et al. 2022
    estimate noise ceilings from random split halves of the repetitions; we
    add the Spearman-Brown step so that the estimate refers to all n_reps:

    1. Split the repetitions at random into two halves of ``h = n_reps // 2``
       (one repetition is left out when n_reps is odd); average each half.
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
    so it compares directly with :func:`correlation_across_images` of a model
    against the repetition-averaged test data, and :func:`true_noise_ceiling`
    checks it on simulated data. Where ``rel < 0`` (no signal, e.g. before
    stimulus onset) we return ``-sqrt(-rel)``, so that averages of pure
    noise stay near 0 instead of being pushed up by clipping. ``progress``
    shows a bar over the splits (a THINGS-MEG test set takes about a second each).
    """
    signals = as_float_array(signals, "signals", SIGNALS_WITH_REPS)
    n_images, n_reps = signals.shape[:2]
    if n_reps < 2:
        raise ValueError(
            f"the noise ceiling needs repeated presentations; signals has n_reps={n_reps}. "
            "Use the test split (THINGS-EEG2: 80 repetitions, THINGS-MEG: 12)"
        )
    if n_images < 3:
        raise ValueError(f"the noise ceiling needs at least 3 images, got {n_images}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    rng = np.random.default_rng(seed)
    half = n_reps // 2
    r_half = np.zeros(signals.shape[2:])
    for _ in tqdm(range(n_splits), desc="noise ceiling splits", disable=not progress, leave=False):
        order = rng.permutation(n_reps)
        first = _mean_of_repetitions(signals, order[:half])
        second = _mean_of_repetitions(signals, order[half : 2 * half])
        r_half += _correlate(first, second, axis=0)
    reliability = spearman_brown(r_half / n_splits, n_reps / half)
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


def post_stimulus_mean(values, times, tmin: float = 0.0) -> float:
    """Mean of a (C, T) map over all channels and the time points ``t >= tmin`` (s).

    The summary used for :func:`correlation_across_images` and the noise
    ceiling: before image onset the brain has nothing to say about the image,
    so those samples would only dilute the average toward 0.
    """
    values = as_float_array(values, "values", ("C", "T"))
    after = check_times(times, values.shape[1]) >= tmin
    if not after.any():
        raise ValueError(f"no time point at or after tmin={tmin} s")
    return float(values[:, after].mean())


def noise_ceiling_summary(
    signals, times, n_splits: int = 100, seed: int = 0, tmin: float = 0.0, progress: bool = True
) -> float:
    """:func:`noise_ceiling` averaged like ``evaluate()["corr_across_images"]``, one float."""
    return post_stimulus_mean(noise_ceiling(signals, n_splits, seed, progress), times, tmin)


def identification_2way(pred, target, times=None, window: tuple[float, float] | None = None) -> float:
    """Pairwise (2-way) identification accuracy; chance 0.5.

    Each generated signal and each real one is flattened to a C*T pattern
    (only the samples with ``window[0] <= t <= window[1]`` when a window and
    ``times`` are given). For every prediction i and every other image j, a
    win is ``corr(pred_i, target_i) > corr(pred_i, target_j)``, a tie is half
    a win; the score is the fraction of wins over all ordered pairs i != j.
    This is the two-alternative form of the image identification of Kay et
    al. 2008 (cf. the 2-way test of Mitchell et al. 2008, Science 320:1191,
    which compares summed matched against summed mismatched similarities).
    """
    r = _pattern_correlations(pred, target, times, window)
    own = np.diag(r)[:, None]
    wins = (own > r) + 0.5 * (own == r)
    off_diagonal = ~np.eye(len(r), dtype=bool)
    return float(wins[off_diagonal].mean())


def identification_top1(pred, target, times=None, window: tuple[float, float] | None = None) -> float:
    """Top-1 identification among all test images; chance 1 / n_images.

    For each generated pattern (flattened C*T, optionally in a time window as
    in :func:`identification_2way`), the image whose real pattern correlates
    most with it must be its own (Kay et al. 2008; the zero-shot
    identification of Gifford et al. 2022 also ranks by correlation). Ties go
    to the lower index, so a flat prediction scores exactly 1 / n_images.
    """
    r = _pattern_correlations(pred, target, times, window)
    return float(np.mean(np.argmax(r, axis=1) == np.arange(len(r))))


def evaluate(
    pred,
    target,
    times,
    sfreq: float,
    ch_type: str = "eeg",
    windows: Mapping[str, tuple[float, float]] = ERP_WINDOWS,
) -> dict[str, float]:
    """Every score for one set of generated test signals, as one flat dict of floats.

    ``pred``: (n_images, C, T). ``target``: (n_images, n_reps, C, T) or
    (n_images, C, T); repetitions are averaged first, as the paper and
    Gifford et al. 2022 evaluate against the averaged test data. ``times``:
    (T,) seconds; ``sfreq``: Hz. ``ch_type`` "eeg" finds ERP peaks on the
    channel mean, "mag" (MEG) on global field power (see ``erp.erp_waveform``).

    Keys: ``mse``, ``pcc`` (:func:`pearson`), ``corr_across_images``
    (:func:`correlation_across_images` averaged by :func:`post_stimulus_mean`:
    all channels, t >= 0), ``identification_2way`` and ``identification_top1``
    (patterns from t >= 0), ``erp_latency_error`` (seconds), ``psd_distance``
    (decades). Compare ``corr_across_images`` with :func:`noise_ceiling_summary`.
    """
    pred = as_float_array(pred, "pred", SIGNALS)
    target = as_float_array(target, "target")
    if target.ndim == 4:
        target = target.mean(axis=1, dtype=np.float64)
    if ch_type not in ("eeg", "mag"):
        raise ValueError(f"ch_type must be 'eeg' or 'mag', got {ch_type!r}")
    pred, target = _pair(pred, target)
    times = check_times(times, pred.shape[-1])
    post_stimulus = (0.0, float(times[-1]))
    reduce = "mean" if ch_type == "eeg" else "gfp"
    return {
        "mse": mse(pred, target),
        "pcc": pearson(pred, target),
        "corr_across_images": post_stimulus_mean(correlation_across_images(pred, target), times),
        "identification_2way": identification_2way(pred, target, times, post_stimulus),
        "identification_top1": identification_top1(pred, target, times, post_stimulus),
        "erp_latency_error": erp_latency_error(pred, target, times, windows, reduce=reduce),
        "psd_distance": psd_distance(pred, target, sfreq),
    }


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred = as_float_array(pred, "pred", SIGNALS)
    target = as_float_array(target, "target", SIGNALS)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {pred.shape} and target {target.shape} must have the same shape (n_images, C, T); "
            "average target over repetitions first if it has them"
        )
    return pred, target


def _mean_of_repetitions(signals: np.ndarray, reps: np.ndarray) -> np.ndarray:
    # One repetition at a time, so a large MEG test set is never copied whole.
    total = np.zeros((signals.shape[0], *signals.shape[2:]))
    for rep in reps:
        total += signals[:, rep]
    return total / len(reps)


def _correlate(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """Pearson r along ``axis``; 0 where either input is exactly constant (r undefined)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a_dev = a - a.mean(axis=axis, keepdims=True)
    b_dev = b - b.mean(axis=axis, keepdims=True)
    numerator = (a_dev * b_dev).sum(axis=axis)
    denominator = np.sqrt((a_dev**2).sum(axis=axis) * (b_dev**2).sum(axis=axis))
    defined = (np.ptp(a, axis=axis) > 0) & (np.ptp(b, axis=axis) > 0)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=defined)


def _pattern_correlations(pred, target, times, window) -> np.ndarray:
    """(n, n) matrix r[i, j] = corr(flattened pred_i, flattened target_j)."""
    pred, target = _pair(pred, target)
    if pred.shape[0] < 2:
        raise ValueError(f"identification needs at least 2 images, got {pred.shape[0]}")
    if window is not None:
        if times is None:
            raise ValueError("a time window needs times= (seconds, one per sample)")
        times = check_times(times, pred.shape[-1])
        keep = (times >= window[0]) & (times <= window[1])
        if not keep.any():
            raise ValueError(f"window {window} s holds no time sample")
        pred, target = pred[..., keep], target[..., keep]
    flat_pred = pred.reshape(len(pred), -1)
    flat_target = target.reshape(len(target), -1)
    # z-score each pattern; then a dot product over d features is d * correlation.
    z_pred = _zscore_rows(flat_pred)
    z_target = _zscore_rows(flat_target)
    return z_pred @ z_target.T / flat_pred.shape[1]


def _zscore_rows(x: np.ndarray) -> np.ndarray:
    # A flat pattern correlates with nothing: leave it as zeros rather than divide by 0.
    flat = np.ptp(x, axis=1, keepdims=True) == 0
    centred = x - x.mean(axis=1, keepdims=True)
    scale = centred.std(axis=1, keepdims=True)
    return np.divide(centred, scale, out=np.zeros_like(centred), where=~flat)
