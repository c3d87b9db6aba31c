"""How good is a generated brain signal? Error, correlation, identification.

Shapes: ``pred`` is (n_images, C, T), one generated signal per test image;
``target`` is the recorded response to the same images, either
(n_images, C, T) or with its repetitions, (n_images, n_reps, C, T).

Three families of scores, each answering its own question:

* **Like the paper** (Xu, Long & Zhang, arXiv 2509.00787): MSE and the
  Pearson correlation between each generated signal and the real one.
* **Like an encoding model** (Gifford et al. 2022, NeuroImage 264:119754):
  the correlation *across images* at every channel and time, which asks
  whether the model knows how image A's response differs from image B's.
  Compare it with a noise ceiling, the best correlation that the noise in
  the recording allows: those live in :mod:`i2b_minimal.evaluation.ceilings`
  and are offered here under their usual names (``metrics.noise_ceiling``...).
* **Identification** (Kay et al. 2008, Nature 452:352): can the generated
  signal tell which of the test images was seen?

ERP and spectrum checks, the fourth family, live in :mod:`i2b_minimal.evaluation.erp`;
:func:`evaluate` gathers all four.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from i2b_minimal.datasets.arrays import as_float_array

from .ceilings import noise_ceiling, noise_ceiling_summary, spearman_brown, true_noise_ceiling
from .correlation import SIGNALS, correlate, correlation_across_images, paired_signals, post_stimulus_mean
from .erp import ERP_WINDOWS, check_times, erp_latency_error, psd_distance

__all__ = [
    "mse", "pearson", "correlation_across_images", "spearman_brown", "noise_ceiling",
    "true_noise_ceiling", "post_stimulus_mean", "noise_ceiling_summary", "identification_2way",
    "identification_top1", "evaluate",
]


def mse(pred, target) -> float:
    """Mean squared error over every image, channel and time, as arXiv 2509.00787 reports it.

    ``pred`` and ``target``: (n_images, C, T). In the units of the data squared;
    for whitened THINGS-EEG2 data, 1.0 is roughly the variance of the signal.
    """
    pred, target = paired_signals(pred, target)
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
    pred, target = paired_signals(pred, target)
    r = correlate(pred, target, axis=-1)  # (n_images, C)
    return r.mean(axis=0) if per_channel else float(r.mean())


def identification_2way(pred, target, times=None, window: tuple[float, float] | None = None) -> float:
    """Pairwise (2-way) identification accuracy on image-centred patterns; chance 0.5.

    From every generated signal the mean of the generated signals over the
    test images is subtracted, and from every real one the mean of the real
    ones: the same operation on both sides. Each is then flattened to a C*T
    pattern (only the samples with ``window[0] <= t <= window[1]`` when a
    window and ``times`` are given). For every prediction i and every other
    image j, a win is ``corr(pred_i, target_i) > corr(pred_i, target_j)``, a
    tie is half a win; the score is the fraction of wins over all ordered
    pairs i != j. This is the two-alternative form of the image
    identification of Kay et al. 2008 (cf. the 2-way test of Mitchell et al.
    2008, Science 320:1191, which compares summed matched against summed
    mismatched similarities).

    Why centre: every image evokes much the same ERP, so on raw patterns every
    prediction correlates with every target through that shared part, and
    which target wins depends on how large the prediction's image-specific
    part is next to it. Scaling the image-specific part (multiplying each
    prediction's deviation from the mean prediction by 3, say) then changes
    raw identification while leaving the correlation across images, and what
    the model knows about the images, unchanged. On centred patterns only the
    image-specific parts are compared, and such a scaling changes nothing.
    """
    r = _pattern_correlations(pred, target, times, window)
    own = np.diag(r)[:, None]
    wins = (own > r) + 0.5 * (own == r)
    off_diagonal = ~np.eye(len(r), dtype=bool)
    return float(wins[off_diagonal].mean())


def identification_top1(pred, target, times=None, window: tuple[float, float] | None = None) -> float:
    """Top-1 identification among all test images; chance 1 / n_images.

    For each generated pattern (image-centred and flattened C*T, optionally in
    a time window, as in :func:`identification_2way`, which says why centred),
    the image whose real pattern correlates most with it must be its own (Kay et al. 2008; the zero-shot
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
    pred, target = paired_signals(pred, target)
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


def _pattern_correlations(pred, target, times, window) -> np.ndarray:
    """(n, n) matrix r[i, j] = corr(flattened centred pred_i, flattened centred target_j)."""
    pred, target = paired_signals(pred, target)
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
    # z-score each centred pattern; then a dot product over d features is d * correlation.
    z_pred = _zscore_rows(_centre_across_images(pred))
    z_target = _zscore_rows(_centre_across_images(target))
    return z_pred @ z_target.T / z_pred.shape[1]


def _centre_across_images(x: np.ndarray) -> np.ndarray:
    """Each image's pattern minus the mean pattern over images, flattened to (n, C*T).

    A pattern that equals the mean (a prediction identical for all images)
    becomes exactly zero, not the rounding residue of the subtraction.
    """
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    centred = flat - flat.mean(axis=0)
    same_as_mean = np.isclose(flat, flat.mean(axis=0), rtol=1e-12, atol=0).all(axis=1)
    centred[same_as_mean] = 0.0
    return centred


def _zscore_rows(x: np.ndarray) -> np.ndarray:
    # A flat pattern correlates with nothing: leave it as zeros rather than divide by 0.
    flat = np.ptp(x, axis=1, keepdims=True) == 0
    centred = x - x.mean(axis=1, keepdims=True)
    scale = centred.std(axis=1, keepdims=True)
    return np.divide(centred, scale, out=np.zeros_like(centred), where=~flat)
