"""Metrics against independent references: scipy, numpy loops, and simulations with a known truth."""

import numpy as np
import pytest
from scipy.stats import pearsonr

from i2b_minimal import erp, metrics

TIMES = np.round(np.arange(-0.2, 0.8, 0.01), 3)  # THINGS-EEG2: 100 samples from -0.2 s at 100 Hz
SFREQ = 100.0


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_pearson_matches_scipy_per_image_and_channel(rng):
    pred, target = rng.normal(size=(2, 4, 3, 25))
    expected = np.array([[pearsonr(pred[i, c], target[i, c])[0] for c in range(3)] for i in range(4)])
    assert metrics.pearson(pred, target) == pytest.approx(expected.mean())
    np.testing.assert_allclose(metrics.pearson(pred, target, per_channel=True), expected.mean(axis=0))


def test_pearson_hand_case_and_invariances():
    target = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    assert metrics.pearson(target, target) == pytest.approx(1.0)
    assert metrics.pearson(-2 * target + 5, target) == pytest.approx(-1.0)
    # corr([1, 0, 0, 1], [1, 2, 3, 4]) = 0 by symmetry
    assert metrics.pearson(np.array([[[1.0, 0.0, 0.0, 1.0]]]), target) == pytest.approx(0.0)
    # A flat prediction has no correlation: scored 0, not NaN.
    assert metrics.pearson(np.ones_like(target), target) == 0.0


def test_mse_hand_case():
    pred = np.zeros((1, 2, 2))
    target = np.array([[[1.0, 2.0], [3.0, 0.0]]])
    assert metrics.mse(pred, target) == pytest.approx((1 + 4 + 9) / 4)


def test_correlation_across_images_matches_corrcoef(rng):
    pred, target = rng.normal(size=(2, 30, 2, 5))
    pred += target  # some real correlation
    result = metrics.correlation_across_images(pred, target)
    assert result.shape == (2, 5)
    for c in range(2):
        for t in range(5):
            assert result[c, t] == pytest.approx(np.corrcoef(pred[:, c, t], target[:, c, t])[0, 1])


def _identification_reference(pred, target):
    """Loop-and-corrcoef version of 2-way and top-1 identification."""
    n = len(pred)
    r = np.array([[np.corrcoef(pred[i].ravel(), target[j].ravel())[0, 1] for j in range(n)] for i in range(n)])
    wins = [1.0 if r[i, i] > r[i, j] else 0.5 if r[i, i] == r[i, j] else 0.0 for i in range(n) for j in range(n) if i != j]
    return np.mean(wins), np.mean([np.argmax(r[i]) == i for i in range(n)])


def test_identification_matches_loop_reference(rng):
    target = rng.normal(size=(12, 3, 8))
    pred = target + 2.0 * rng.normal(size=target.shape)  # noisy enough that some pairs fail
    two_way, top1 = _identification_reference(pred, target)
    assert 0.5 < two_way < 1.0
    assert metrics.identification_2way(pred, target) == pytest.approx(two_way)
    assert metrics.identification_top1(pred, target) == pytest.approx(top1)


def test_identification_perfect_and_chance(rng):
    target = rng.normal(size=(200, 4, 10))
    assert metrics.identification_2way(target, target) == 1.0
    assert metrics.identification_top1(target, target) == 1.0
    # Under chance each row's score is a uniform rank (s.d. 0.29); over 200 rows the s.d. is 0.02.
    unrelated = rng.normal(size=target.shape)
    assert metrics.identification_2way(unrelated, target) == pytest.approx(0.5, abs=0.08)
    assert metrics.identification_top1(unrelated, target) < 0.05
    # A flat prediction ties with every image: a tie is half a win, so exactly chance.
    assert metrics.identification_2way(np.zeros_like(target), target) == 0.5
    assert metrics.identification_top1(np.zeros_like(target), target) == 1 / 200


def test_identification_window_uses_only_those_samples(rng):
    target = rng.normal(size=(20, 2, len(TIMES)))
    pred = rng.normal(size=target.shape)
    after = TIMES >= 0
    pred[..., after] = target[..., after]  # right after onset, noise before
    assert metrics.identification_top1(pred, target, TIMES, window=(0.0, 1.0)) == 1.0
    assert metrics.identification_top1(pred, target, TIMES, window=(-0.2, -0.05)) < 0.5


def test_spearman_brown_formula():
    assert metrics.spearman_brown(0.5, 2) == pytest.approx(2 * 0.5 / 1.5)
    assert metrics.spearman_brown(0.3, 1) == pytest.approx(0.3)
    # Lengthening then shortening by the same factor gives back r.
    assert metrics.spearman_brown(metrics.spearman_brown(0.2, 4), 0.25) == pytest.approx(0.2)


def _simulate(rng, n_reps=8, max_noise_sd=3.0, n_images=1000, n_channels=2, n_times=8):
    """Noiseless responses plus Gaussian noise whose size grows over time, so the ceiling varies."""
    truth = rng.normal(size=(n_images, n_channels, n_times))
    noise_sd = np.linspace(0.5, max_noise_sd, n_times)
    signals = truth[:, None] + noise_sd * rng.normal(size=(n_images, n_reps, n_channels, n_times))
    return truth, signals, noise_sd


def test_split_half_noise_ceiling_matches_true_ceiling(rng):
    truth, signals, noise_sd = _simulate(rng)
    estimate = metrics.noise_ceiling(signals, n_splits=20, seed=1)
    true = metrics.true_noise_ceiling(truth, signals)
    # Theory for unit-variance truth: corr(S, mean of R reps) = sqrt(1 / (1 + sd^2 / R)), here 0.99 to 0.69.
    theory = np.sqrt(1 / (1 + noise_sd**2 / signals.shape[1]))
    np.testing.assert_allclose(true, np.broadcast_to(theory, true.shape), atol=0.06)
    # Both are estimates from 1000 images: a few hundredths of sampling error each.
    np.testing.assert_allclose(estimate, true, atol=0.06)
    assert abs(estimate.mean() - true.mean()) < 0.02


def test_noise_ceiling_odd_repetitions_and_pure_noise(rng):
    # Three repetitions: halves of one, extrapolated threefold by Spearman-Brown.
    truth, signals, _ = _simulate(rng, n_reps=3, max_noise_sd=1.5)
    estimate = metrics.noise_ceiling(signals, n_splits=20)
    true = metrics.true_noise_ceiling(truth, signals)
    np.testing.assert_allclose(estimate, true, atol=0.06)
    assert abs(estimate.mean() - true.mean()) < 0.02
    noise_only = rng.normal(size=(300, 6, 2, 10))
    assert abs(metrics.noise_ceiling(noise_only, n_splits=10).mean()) < 0.1


def test_noise_ceiling_summary_averages_post_stimulus(rng):
    signals = rng.normal(size=(50, 4, 2, len(TIMES))).astype(np.float32)
    ceiling = metrics.noise_ceiling(signals, n_splits=3, seed=0)
    expected = ceiling[:, TIMES >= 0].mean()
    assert metrics.noise_ceiling_summary(signals, TIMES, n_splits=3, seed=0) == pytest.approx(expected)
    assert metrics.post_stimulus_mean(np.array([[1.0, 2.0, 4.0]]), [-0.1, 0.0, 0.1]) == pytest.approx(3.0)


def _erp(latencies=(0.10, 0.17, 0.25), amplitudes=(2.0, -3.0, 2.5)):
    wave = sum(a * np.exp(-0.5 * ((TIMES - t) / 0.012) ** 2) for t, a in zip(latencies, amplitudes))
    return np.tile(wave, (5, 3, 1))  # (n_images, C, T)


def test_erp_peaks_finds_planted_components():
    peaks = erp.erp_peaks(_erp(), TIMES)
    assert peaks["P1"]["latency"] == pytest.approx(0.10)
    assert peaks["N1"]["latency"] == pytest.approx(0.17)
    assert peaks["P2"]["latency"] == pytest.approx(0.25)
    assert peaks["N1"]["amplitude"] == pytest.approx(-3.0, abs=1e-6)
    # GFP: put the N1 with opposite sign on one channel, so the channel mean shrinks but GFP peaks there.
    signals = _erp()
    signals[:, 0] *= -1
    assert erp.erp_peaks(signals, TIMES, reduce="gfp")["N1"]["latency"] == pytest.approx(0.17)


def test_erp_latency_error_measures_the_shift():
    target = _erp()
    pred = _erp(latencies=(0.12, 0.17, 0.22))
    assert erp.erp_latency_error(target, target, TIMES) == 0.0
    assert erp.erp_latency_error(pred, target, TIMES) == pytest.approx((0.02 + 0.0 + 0.03) / 3)


def test_erp_window_outside_epoch_is_a_clear_error():
    with pytest.raises(ValueError, match="P3"):
        erp.erp_peaks(_erp(), TIMES, windows={"P3": (1.0, 1.2)})


def test_psd_distance(rng):
    target = rng.normal(size=(10, 2, 100))
    assert erp.psd_distance(target, target, SFREQ) == 0.0
    # Ten times the amplitude is 100 times the power: exactly two decades at every frequency.
    assert erp.psd_distance(10 * target, target, SFREQ) == pytest.approx(2.0)
    smooth = np.cumsum(target, axis=-1)  # red (1/f^2) noise: a different spectral shape
    smooth /= smooth.std()
    assert erp.psd_distance(smooth, target, SFREQ) > 0.3


def test_evaluate_perfect_prediction(rng):
    truth = _erp() + 0.3 * rng.normal(size=_erp().shape)
    target = truth[:, None] + 0.01 * rng.normal(size=(5, 4, 3, len(TIMES)))
    pred = target.mean(axis=1)
    result = metrics.evaluate(pred, target, TIMES, SFREQ)
    assert set(result) == {
        "mse", "pcc", "corr_across_images", "identification_2way",
        "identification_top1", "erp_latency_error", "psd_distance",
    }
    assert all(isinstance(v, float) for v in result.values())
    assert result["mse"] == pytest.approx(0.0, abs=1e-12)
    for key in ("pcc", "corr_across_images", "identification_2way", "identification_top1"):
        assert result[key] == pytest.approx(1.0)
    assert result["erp_latency_error"] == 0.0
    assert result["psd_distance"] == pytest.approx(0.0, abs=1e-9)
    assert metrics.evaluate(pred, target, TIMES, SFREQ, ch_type="mag")["erp_latency_error"] == 0.0


def test_evaluate_accepts_torch_tensors(rng):
    torch = pytest.importorskip("torch")
    target = rng.normal(size=(6, 2, len(TIMES)))
    as_numpy = metrics.evaluate(target[::-1].copy(), target, TIMES, SFREQ)
    as_torch = metrics.evaluate(torch.from_numpy(target[::-1].copy()), torch.from_numpy(target), TIMES, SFREQ)
    assert as_numpy == pytest.approx(as_torch)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: metrics.mse(x, x[:, :1]), "same shape"),
        (lambda x: metrics.pearson(x[0], x[0]), r"\(n_images, C, T\)"),
        (lambda x: metrics.correlation_across_images(x, np.where(x > 2, np.nan, x)), "NaN"),
        (lambda x: metrics.noise_ceiling(x[:, None]), "n_reps=1"),
        (lambda x: metrics.evaluate(x, x, TIMES[:-1], SFREQ), "times has 99 values"),
        (lambda x: erp.psd_distance(x, x[:, :, :50], SFREQ), "same shape"),
        (lambda x: erp.erp_peaks(x, TIMES[::-1]), "increasing"),
        (lambda x: metrics.evaluate(x, x, TIMES[::-1], SFREQ), "increasing"),  # the same check of times as erp
    ],
)
def test_bad_input_is_a_clear_error(rng, call, message):
    x = rng.normal(size=(5, 3, len(TIMES)))
    with pytest.raises(ValueError, match=message):
        call(x)
