"""The paired bootstrap of a score difference (evaluation/bootstrap.py), against SciPy's bootstrap."""

import numpy as np
import pytest
from scipy import stats

from i2b_minimal.evaluation import metrics
from i2b_minimal.evaluation.bootstrap import corr_difference_interval

TIMES = np.linspace(-0.1, 0.5, 7)


def _world(n_images=60, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n_images, 3, len(TIMES)))
    target = truth + rng.normal(size=truth.shape)
    good = truth + 0.5 * rng.normal(size=truth.shape)
    worse = truth + 1.0 * rng.normal(size=truth.shape)
    return target, good, worse


def _score(pred, target):
    return metrics.post_stimulus_mean(metrics.correlation_across_images(pred, target), TIMES)


def test_the_difference_is_the_difference_of_the_scores_and_its_interval_matches_scipy():
    target, good, worse = _world()
    ours = corr_difference_interval(good, worse, target, TIMES, n_resamples=4000, seed=1)
    assert ours["difference"] == pytest.approx(_score(good, target) - _score(worse, target), abs=1e-12)
    # SciPy resamples the image indices (one sample of them: the pairing), we score both models on each redraw.
    reference = stats.bootstrap((np.arange(len(target)),),
                                lambda rows: _score(good[rows], target[rows]) - _score(worse[rows], target[rows]),
                                vectorized=False, n_resamples=4000, method="percentile",
                                random_state=np.random.default_rng(2)).confidence_interval
    # Two Monte-Carlo estimates of the same percentiles: they agree to a few hundredths of the interval's width.
    width = reference.high - reference.low
    assert ours["low"] == pytest.approx(reference.low, abs=0.06 * width)
    assert ours["high"] == pytest.approx(reference.high, abs=0.06 * width)
    assert ours["low"] > 0  # the better prediction is better beyond the luck of the images


def test_the_weighted_redraws_are_the_redraws_scored_one_by_one():
    # Each redraw scored as it is defined: the drawn images copied, scored with the library's correlation; a
    # channel that never varies scores 0 in both.
    target, good, worse = _world(n_images=30)
    good[:, 1] = 0.0
    draws = np.random.default_rng(3).integers(len(target), size=(50, len(target)))
    by_copies = [_score(good[rows], target[rows]) - _score(worse[rows], target[rows]) for rows in draws]
    ours = corr_difference_interval(good, worse, target, TIMES, n_resamples=50, level=0.5, seed=3)
    assert (ours["low"], ours["high"]) == pytest.approx(tuple(np.quantile(by_copies, [0.25, 0.75])), abs=1e-12)


def test_identical_predictions_differ_by_exactly_zero_on_every_redraw():
    target, good, _ = _world()
    assert corr_difference_interval(good, good.copy(), target, TIMES, n_resamples=200) == \
        {"difference": 0.0, "low": 0.0, "high": 0.0}


def test_a_stack_of_seeds_is_scored_by_its_mean_score():
    target, good, worse = _world()
    second_seed = good + 0.3 * np.random.default_rng(5).normal(size=good.shape)
    result = corr_difference_interval(np.stack([good, second_seed]), worse, target, TIMES, n_resamples=100)
    expected = (_score(good, target) + _score(second_seed, target)) / 2 - _score(worse, target)
    assert result["difference"] == pytest.approx(expected, abs=1e-12)


def test_mismatched_shapes_and_levels_are_refused():
    target, good, _ = _world()
    with pytest.raises(ValueError, match="must each match the target"):
        corr_difference_interval(good[:10], good, target, TIMES)
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        corr_difference_interval(good, good, target, TIMES, level=1.0)
    with pytest.raises(ValueError, match=r"\(n_seeds, n_images, C, T\)"):
        corr_difference_interval(good[0, 0], good, target, TIMES)
