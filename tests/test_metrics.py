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
    """Loop-and-corrcoef version of 2-way and top-1 identification on image-centred patterns."""
    pred, target = pred - pred.mean(axis=0), target - target.mean(axis=0)
    return _identification_from_patterns(pred, target)


def _identification_from_patterns(pred, target):
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
    # A prediction that ignores the image (one ERP for all) ties with every image: a tie is half a win,
    # so exactly chance, also when the mean over images does not reproduce the ERP bit for bit.
    for blind in (np.zeros_like(target), np.broadcast_to(0.1 + rng.normal(size=(1, 4, 10)), target.shape)):
        assert metrics.identification_2way(blind, target) == 0.5
        assert metrics.identification_top1(blind, target) == 1 / 200


def test_centred_identification_ignores_the_scale_of_the_image_specific_part(rng):
    """Scaling each prediction's deviation from the mean prediction leaves centred identification unchanged.

    The data are built like EEG: a large shared ERP, whose amplitude varies a little from image to image,
    plus small image-specific responses; the prediction knows the image-specific part only noisily.
    Raw (uncentred) identification, computed here independently with corrcoef on the uncentred
    patterns, rises with the scale alone.
    """
    erp_wave = 3.0 * rng.normal(size=(1, 4, 10))
    specific = rng.normal(size=(60, 4, 10))
    gain = 1 + 0.3 * rng.normal(size=(60, 1, 1))
    target = gain * erp_wave + specific + 0.5 * rng.normal(size=specific.shape)
    guess = specific + 2.0 * rng.normal(size=specific.shape)
    by_scale = {}
    for scale in (0.5, 3.0):
        pred = erp_wave + scale * (guess - guess.mean(axis=0))
        by_scale[scale] = (metrics.identification_2way(pred, target), metrics.identification_top1(pred, target),
                           _identification_from_patterns(pred, target))
    (two_way_1, top1_1, raw_1), (two_way_3, top1_3, raw_3) = by_scale[0.5], by_scale[3.0]
    assert two_way_3 == pytest.approx(two_way_1, abs=1e-12) and top1_3 == pytest.approx(top1_1, abs=1e-12)
    assert 0.6 < two_way_1 < 0.99  # informative, not perfect
    assert raw_3[0] > raw_1[0] + 0.05  # uncentred 2-way moves with the scale


def test_identification_window_uses_only_those_samples(rng):
    target = rng.normal(size=(20, 2, len(TIMES)))
    pred = rng.normal(size=target.shape)
    after = TIMES >= 0
    pred[..., after] = target[..., after]  # right after onset, noise before
    assert metrics.identification_top1(pred, target, TIMES, window=(0.0, 1.0)) == 1.0
    assert metrics.identification_top1(pred, target, TIMES, window=(-0.2, -0.05)) < 0.5


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
