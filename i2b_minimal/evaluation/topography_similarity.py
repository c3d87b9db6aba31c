"""How subjects differ, and whether a generator's subjects differ the same way.

The paper's subject figure puts every subject's topographies side by side; what the eye compares there is
which subjects look alike. That is a matrix: the Pearson correlation between the spatio-temporal patterns
of each pair of subjects (the grand average over images, every sensor, in the window of the P1, N1 and P2),
a representational similarity matrix over subjects (Kriegeskorte et al. 2008) in place of one over images.
A generator that has learned each subject's head and latencies reproduces the matrix of the real data;
:func:`similarity_agreement` scores that as the correlation of the two matrices' entries off the diagonal
(the diagonal is 1 in both). Within a subject, :func:`variation_across_images` says how much the topography at
one latency changes from image to image.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

COMPONENT_WINDOW = (0.08, 0.30)  # s: from the P1 to the P2 of evaluation/erp.py's ERP_WINDOWS


def grand_average_pattern(signals, times, window=COMPONENT_WINDOW) -> np.ndarray:
    """(images, [repetitions,] C, T) -> the average over images (and repetitions): its C x T pattern in ``window``,
    flattened to (C * T_window,)."""
    signals, times = np.asarray(signals, dtype=np.float64), np.asarray(times)
    inside = (times >= window[0]) & (times <= window[1])
    if not inside.any():
        raise ValueError(f"no time sample lies in the window {window} s (times run {times[0]:.3f}-{times[-1]:.3f} s)")
    return signals.reshape(-1, *signals.shape[-2:]).mean(axis=0)[:, inside].ravel()


def between_subject_similarity(per_subject: Mapping[int, object], times, window=COMPONENT_WINDOW):
    """``(subjects, S x S matrix)``: the correlation of every pair of subjects' grand-average patterns.

    ``per_subject`` maps a subject number to its signals (images, [repetitions,] C, T), all on the same sensors.
    """
    subjects = sorted(per_subject)
    if len(subjects) < 2:
        raise ValueError(f"a similarity between subjects needs at least 2 subjects, got {subjects}")
    patterns = np.array([grand_average_pattern(per_subject[s], times, window) for s in subjects])
    return subjects, np.corrcoef(patterns)


def similarity_agreement(real: np.ndarray, generated: np.ndarray) -> float:
    """The Pearson correlation of two S x S similarity matrices over their entries above the diagonal."""
    real, generated = np.asarray(real), np.asarray(generated)
    if real.shape != generated.shape or real.ndim != 2 or real.shape[0] != real.shape[1] or real.shape[0] < 3:
        raise ValueError(f"expected two S x S matrices of the same S >= 3 (3 pairs at least), got {real.shape} and "
                         f"{generated.shape}")
    upper = np.triu_indices(real.shape[0], k=1)
    return float(np.corrcoef(real[upper], generated[upper])[0, 1])


def variation_across_images(signals, times, latency: float) -> float:
    """How much a subject's topography at ``latency`` changes between images: the standard deviation over images
    of each sensor's value, averaged over sensors. ``signals``: (images, [repetitions,] C, T); repetitions are
    averaged first, so recorded data keeps the noise of its average and a conditional mean has none."""
    signals = np.asarray(signals, dtype=np.float64)
    per_image = signals.mean(axis=1) if signals.ndim == 4 else signals
    column = int(np.argmin(np.abs(np.asarray(times) - latency)))
    return float(per_image[:, :, column].std(axis=0).mean())
