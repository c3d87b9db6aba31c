"""Noise ceilings against simulations with a known truth, and against loops over the same splits."""

import numpy as np
import pytest

from i2b_minimal.evaluation import ceilings, metrics

TIMES = np.round(np.arange(-0.2, 0.8, 0.01), 3)  # THINGS-EEG2: 100 samples from -0.2 s at 100 Hz


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _simulate(rng, n_reps=8, max_noise_sd=3.0, n_images=1000, n_channels=2, n_times=8):
    """Unit-variance noiseless responses plus Gaussian noise whose size grows over time, so the ceiling varies."""
    truth = rng.normal(size=(n_images, n_channels, n_times))
    noise_sd = np.linspace(0.5, max_noise_sd, n_times)
    signals = truth[:, None] + noise_sd * rng.normal(size=(n_images, n_reps, n_channels, n_times))
    return truth, signals, noise_sd


def test_metrics_offers_the_ceilings_under_their_usual_names():
    for name in ("noise_ceiling", "true_noise_ceiling", "noise_ceiling_summary", "spearman_brown"):
        assert getattr(metrics, name) is getattr(ceilings, name)


def test_spearman_brown_formula():
    assert ceilings.spearman_brown(0.5, 2) == pytest.approx(2 * 0.5 / 1.5)
    assert ceilings.spearman_brown(0.3, 1) == pytest.approx(0.3)
    # Lengthening then shortening by the same factor gives back r.
    assert ceilings.spearman_brown(ceilings.spearman_brown(0.2, 4), 0.25) == pytest.approx(0.2)


def test_split_half_noise_ceiling_matches_true_ceiling(rng):
    truth, signals, noise_sd = _simulate(rng)
    estimate = ceilings.noise_ceiling(signals, n_splits=20, seed=1)
    true = ceilings.true_noise_ceiling(truth, signals)
    # Theory for unit-variance truth: corr(S, mean of R reps) = sqrt(1 / (1 + sd^2 / R)), here 0.99 to 0.69.
    theory = np.sqrt(1 / (1 + noise_sd**2 / signals.shape[1]))
    np.testing.assert_allclose(true, np.broadcast_to(theory, true.shape), atol=0.06)
    # Both are estimates from 1000 images: a few hundredths of sampling error each.
    np.testing.assert_allclose(estimate, true, atol=0.06)
    assert abs(estimate.mean() - true.mean()) < 0.02


def test_noise_ceiling_odd_repetitions_and_pure_noise(rng):
    # Three repetitions: halves of one, extrapolated threefold by Spearman-Brown.
    truth, signals, _ = _simulate(rng, n_reps=3, max_noise_sd=1.5)
    estimate = ceilings.noise_ceiling(signals, n_splits=20)
    true = ceilings.true_noise_ceiling(truth, signals)
    np.testing.assert_allclose(estimate, true, atol=0.06)
    assert abs(estimate.mean() - true.mean()) < 0.02
    noise_only = rng.normal(size=(300, 6, 2, 10))
    assert abs(ceilings.noise_ceiling(noise_only, n_splits=10).mean()) < 0.1


def test_noise_ceiling_summary_averages_post_stimulus(rng):
    signals = rng.normal(size=(50, 4, 2, len(TIMES))).astype(np.float32)
    ceiling = ceilings.noise_ceiling(signals, n_splits=3, seed=0)
    expected = ceiling[:, TIMES >= 0].mean()
    assert ceilings.noise_ceiling_summary(signals, TIMES, n_splits=3, seed=0) == pytest.approx(expected)
    assert metrics.post_stimulus_mean(np.array([[1.0, 2.0, 4.0]]), [-0.1, 0.0, 0.1]) == pytest.approx(3.0)


def test_random_halves_are_disjoint_halves_that_vary():
    splits = list(ceilings.random_halves(9, n_splits=50, seed=3))
    assert len(splits) == 50
    for first, second in splits:
        assert len(first) == len(second) == 4 and not set(first) & set(second)
    assert len({tuple(sorted(first)) for first, _ in splits}) > 40  # C(9, 4) = 126 possible halves
    again = list(ceilings.random_halves(9, n_splits=50, seed=3))
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(splits, again))


def test_gifford_protocol_matches_a_loop_over_the_same_splits(rng):
    truth, signals, _ = _simulate(rng, n_reps=6, n_images=30, n_times=3)
    pred = truth + rng.normal(size=truth.shape)
    bounds = ceilings.noise_ceiling_gifford(signals, n_iterations=7, seed=5, progress=False)
    score = ceilings.gifford_score(pred, signals, n_iterations=7, seed=5)
    lower, upper, model = (np.zeros(signals.shape[2:]) for _ in range(3))
    for first, second in ceilings.random_halves(6, n_splits=7, seed=5):
        half_1, half_2, everything = signals[:, first].mean(1), signals[:, second].mean(1), signals.mean(1)
        for c in range(signals.shape[2]):
            for t in range(signals.shape[3]):
                lower[c, t] += np.corrcoef(half_1[:, c, t], half_2[:, c, t])[0, 1] / 7
                upper[c, t] += np.corrcoef(everything[:, c, t], half_1[:, c, t])[0, 1] / 7
                model[c, t] += np.corrcoef(pred[:, c, t], half_1[:, c, t])[0, 1] / 7
    np.testing.assert_allclose(bounds["lower"], lower, atol=1e-12)
    np.testing.assert_allclose(bounds["upper"], upper, atol=1e-12)
    np.testing.assert_allclose(score, model, atol=1e-12)


def test_gifford_bounds_bracket_the_true_ceiling(rng):
    """lower <= truth's score <= upper, against half 1 (their protocol) and against all repetitions (ours).

    With unit-variance truth and noise s.d. sd, a half of h = R/2 repetitions has noise variance
    v = sd^2 / h, so in theory lower = 1 / (1 + v), the truth against half 1 scores sqrt(1 / (1 + v)),
    against all R repetitions sqrt(1 / (1 + v / 2)), and upper = sqrt((1 + v / 2) / (1 + v)).
    """
    truth, signals, noise_sd = _simulate(rng, n_reps=8, max_noise_sd=4.0)
    bounds = ceilings.noise_ceiling_gifford(signals, n_iterations=100, seed=2, progress=False)
    against_half = ceilings.gifford_score(truth, signals, n_iterations=100, seed=2)
    against_all = ceilings.true_noise_ceiling(truth, signals)
    v = noise_sd**2 / 4
    for estimate, theory in ((bounds["lower"], 1 / (1 + v)), (against_half, np.sqrt(1 / (1 + v))),
                             (against_all, np.sqrt(1 / (1 + v / 2))), (bounds["upper"], np.sqrt((1 + v / 2) / (1 + v)))):
        np.testing.assert_allclose(estimate, np.broadcast_to(theory, estimate.shape), atol=0.05)  # 1000 images
    # Each map's Monte-Carlo error is a few thousandths; the order must hold within 0.01 everywhere.
    assert np.all(bounds["lower"] <= against_half + 0.01) and np.all(against_half <= bounds["upper"] + 0.01)
    assert np.all(bounds["lower"] <= against_all + 0.01) and np.all(against_all <= bounds["upper"] + 0.01)
    assert np.mean(bounds["upper"] - bounds["lower"]) > 0.1


def test_gifford_summary_averages_post_stimulus(rng):
    signals = rng.normal(size=(40, 4, 2, len(TIMES))) + rng.normal(size=(40, 1, 2, len(TIMES)))
    bounds = ceilings.noise_ceiling_gifford(signals, n_iterations=3, seed=1, progress=False)
    summary = ceilings.noise_ceiling_gifford_summary(signals, TIMES, n_iterations=3, seed=1, progress=False)
    assert summary == pytest.approx({name: bound[:, TIMES >= 0].mean() for name, bound in bounds.items()})


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: ceilings.noise_ceiling(x[:, :1]), "n_reps=1"),
        (lambda x: ceilings.noise_ceiling_gifford(x[:2]), "at least 3 images"),
        (lambda x: ceilings.noise_ceiling_gifford(x, n_iterations=0), "at least 1"),
        (lambda x: ceilings.gifford_score(x[:, 0, :, :-1], x), "same shape"),
    ],
)
def test_bad_input_is_a_clear_error(rng, call, message):
    x = rng.normal(size=(5, 4, 3, 10))
    with pytest.raises(ValueError, match=message):
        call(x)
