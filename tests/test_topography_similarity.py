"""The similarity of subjects' topographies, real against generated, checked against scipy and by construction."""

import numpy as np
import pytest
from scipy import stats

from i2b_minimal.evaluation import topography_similarity as similarity

TIMES = np.arange(-0.1, 0.5, 0.01)


def subject_signals(rng, n_subjects=4, images=6, reps=3):
    return {s: rng.normal(size=(images, reps, 5, len(TIMES))) for s in range(1, n_subjects + 1)}


def test_the_matrix_correlates_each_pair_of_grand_average_patterns():
    rng = np.random.default_rng(0)
    signals = subject_signals(rng)
    subjects, matrix = similarity.between_subject_similarity(signals, TIMES)
    window = (TIMES >= 0.08) & (TIMES <= 0.30)
    for i, a in enumerate(subjects):
        for j, b in enumerate(subjects):
            pa = signals[a].mean(axis=(0, 1))[:, window].ravel()
            pb = signals[b].mean(axis=(0, 1))[:, window].ravel()
            assert matrix[i, j] == pytest.approx(stats.pearsonr(pa, pb)[0])
    # Conditional means (images, C, T) enter like recordings (images, repetitions, C, T).
    means = {s: x.mean(axis=1) for s, x in signals.items()}
    np.testing.assert_allclose(similarity.between_subject_similarity(means, TIMES)[1], matrix)


def test_agreement_is_the_correlation_above_the_diagonal_and_one_for_a_faithful_generator():
    rng = np.random.default_rng(1)
    signals = subject_signals(rng, n_subjects=5)
    _, real = similarity.between_subject_similarity(signals, TIMES)
    scaled = {s: 3 * x + 2 for s, x in signals.items()}  # same patterns up to gain and offset
    _, generated = similarity.between_subject_similarity(scaled, TIMES)
    assert similarity.similarity_agreement(real, generated) == pytest.approx(1.0)
    other = similarity.between_subject_similarity(subject_signals(rng, n_subjects=5), TIMES)[1]
    upper = np.triu_indices(5, k=1)
    assert similarity.similarity_agreement(real, other) == pytest.approx(stats.pearsonr(real[upper], other[upper])[0])


def test_variation_across_images_at_one_latency():
    rng = np.random.default_rng(2)
    signals = rng.normal(size=(6, 3, 5, len(TIMES)))
    column = int(np.argmin(np.abs(TIMES - 0.17)))
    expected = signals.mean(axis=1)[:, :, column].std(axis=0).mean()
    assert similarity.variation_across_images(signals, TIMES, 0.17) == pytest.approx(expected)
    assert similarity.variation_across_images(signals.mean(axis=1), TIMES, 0.17) == pytest.approx(expected)
    same_for_every_image = np.broadcast_to(signals[:1], signals.shape)
    assert similarity.variation_across_images(same_for_every_image, TIMES, 0.17) == 0.0


def test_messages():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        similarity.between_subject_similarity(subject_signals(rng, n_subjects=1), TIMES)
    with pytest.raises(ValueError, match=r"no time sample lies in the window \(0.6, 0.7\)"):
        similarity.grand_average_pattern(rng.normal(size=(2, 5, len(TIMES))), TIMES, window=(0.6, 0.7))
    with pytest.raises(ValueError, match="S >= 3"):
        similarity.similarity_agreement(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="same S"):
        similarity.similarity_agreement(np.eye(3), np.eye(4))
