"""Single trials against single trials, on simulated trials whose noise is known."""

import numpy as np
import pytest
import scipy.linalg
from scipy.signal import lfilter
from scipy.stats import binomtest

from i2b_minimal.evaluation import c2st, single_trial

SFREQ = 100.0
N_IMAGES, N_CHANNELS, N_TIMES = 40, 6, 64


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _brain_noise(rng, n_trials, scale=1.0):
    """Noise correlated in space (a random mixing of the channels) and in time (AR(1), coefficient 0.8)."""
    white = rng.normal(size=(N_IMAGES, n_trials, N_CHANNELS, N_TIMES))
    red = lfilter([1.0], [1.0, -0.8], white, axis=-1)
    mixing = np.eye(N_CHANNELS) + 0.6 * np.random.default_rng(42).normal(size=(N_CHANNELS, N_CHANNELS))
    return scale * np.einsum("cd,nrdt->nrct", mixing, red)


def _truth(rng):
    erp = np.sin(np.linspace(0, 3 * np.pi, N_TIMES)) * np.linspace(1, 2, N_CHANNELS)[:, None]
    return erp + 0.5 * rng.normal(size=(N_IMAGES, N_CHANNELS, N_TIMES))


def _pooled_residual_reference(x):
    """Each image's trials minus their mean, with the unbiased (ddof=1) scaling, as (C, all samples)."""
    k = x.shape[1]
    deviations = (x - x.mean(axis=1, keepdims=True)) * np.sqrt(k / (k - 1))
    return np.moveaxis(deviations, 2, 0).reshape(x.shape[2], -1)


def test_dispersion_ratio_is_1_for_trials_drawn_alike_and_half_for_half_the_variance(rng):
    truth = _truth(rng)
    trials = truth[:, None] + _brain_noise(rng, 20)
    alike = truth[:, None] + _brain_noise(rng, 10)
    half = truth[:, None] + _brain_noise(rng, 10, scale=np.sqrt(0.5))
    # Independent reference: the unbiased per-image variance, averaged over images and times, per channel.
    reference = (np.var(half, axis=1, ddof=1).mean(axis=(0, 2)) / np.var(trials, axis=1, ddof=1).mean(axis=(0, 2)))
    np.testing.assert_allclose(single_trial.dispersion_ratio(half, trials), reference, rtol=1e-10)
    # AR(1) noise over 64 samples, 40 images: each channel's variance is known to a few per cent.
    np.testing.assert_allclose(single_trial.dispersion_ratio(alike, trials), 1.0, atol=0.12)
    np.testing.assert_allclose(single_trial.dispersion_ratio(half, trials), 0.5, atol=0.06)


def test_ten_times_the_trials_is_exactly_that_far_away(rng):
    trials = _truth(rng)[:, None] + _brain_noise(rng, 8)
    result = single_trial.compare_single_trials(10 * trials, trials, SFREQ)
    assert result["dispersion_ratio_min"] == pytest.approx(100.0) and result["dispersion_ratio_max"] == pytest.approx(100.0)
    # A covariance 100 times larger in every direction: sqrt(C) |log 100|. Power 100 times larger: 2 decades.
    assert result["covariance_distance"] == pytest.approx(np.sqrt(N_CHANNELS) * np.log(100.0))
    assert result["psd_distance"] == pytest.approx(2.0)


def test_covariance_distance_matches_the_matrix_logarithm(rng):
    trials = _truth(rng)[:, None] + _brain_noise(rng, 6)
    samples = _truth(rng)[:, None] + rng.normal(size=(N_IMAGES, 4, N_CHANNELS, N_TIMES))
    a, b = (np.cov(_pooled_residual_reference(x), bias=True, ddof=None) for x in (samples, trials))
    # np.cov subtracts the overall mean of the (already centred) residuals: below 1e-3 of their size here.
    root = np.real(scipy.linalg.sqrtm(np.linalg.inv(b)))
    expected = np.linalg.norm(np.real(scipy.linalg.logm(root @ a @ root)), "fro")
    assert single_trial.covariance_distance(samples, trials) == pytest.approx(expected, rel=1e-3)
    alike = _truth(rng)[:, None] + _brain_noise(rng, 6)
    assert single_trial.covariance_distance(alike, trials) < 0.2 * expected
    one_pattern = np.repeat(samples[:, :, :1], N_CHANNELS, axis=2)  # every channel the same: rank 1
    assert single_trial.covariance_distance(one_pattern, trials) == np.inf


def test_residual_spectrum_tells_white_from_red_noise(rng):
    truth = _truth(rng)
    trials = truth[:, None] + _brain_noise(rng, 10)
    alike = truth[:, None] + _brain_noise(rng, 4)
    white = truth[:, None] + trials.std() * rng.normal(size=(N_IMAGES, 4, N_CHANNELS, N_TIMES))
    assert single_trial.residual_psd_distance(alike, trials, SFREQ) < 0.1
    assert single_trial.residual_psd_distance(white, trials, SFREQ) > 0.3


def test_c2st_is_at_chance_for_two_halves_of_the_same_trials(rng):
    trials = _truth(rng)[:, None] + _brain_noise(rng, 20)
    result = c2st.c2st(trials[:, :10], trials[:, 10:], seed=1)
    assert result["n_trials"] == 2 * N_IMAGES * 10
    # 800 held-out predictions: the accuracy's s.d. under the null is 0.018.
    assert result["accuracy"] == pytest.approx(0.5, abs=0.07)
    assert result["ci_low"] < 0.5 < result["ci_high"]


def test_c2st_tells_a_ridge_mean_with_white_noise_from_real_trials(rng):
    truth = _truth(rng)
    trials = truth[:, None] + _brain_noise(rng, 20)
    ridge_like = 0.8 * truth + 0.1 * rng.normal(size=truth.shape)
    # White noise with each channel's real trial-to-trial variance: the right spread, the wrong structure.
    spread = np.sqrt(np.var(trials, axis=1, ddof=1).mean(axis=(0, 2)))
    white = ridge_like[:, None] + spread[:, None] * rng.normal(size=(N_IMAGES, 10, N_CHANNELS, N_TIMES))
    np.testing.assert_allclose(single_trial.dispersion_ratio(white, trials), 1.0, atol=0.12)
    result = c2st.c2st(white, trials, seed=1)
    assert result["accuracy"] > 0.8 and result["ci_low"] > 0.7


def test_wilson_interval_matches_scipy():
    for successes, n in ((0, 10), (37, 80), (800, 800), (412, 800)):
        expected = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert c2st.wilson_interval(successes, n) == pytest.approx((expected.low, expected.high), abs=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: single_trial.dispersion_ratio(x[:, :1], x), "at least 2 samples"),
        (lambda x: single_trial.dispersion_ratio(x, x[:-1]), "same images"),
        (lambda x: single_trial.covariance_distance(x, np.repeat(x[:, :, :1], 3, axis=2)), "singular"),
        (lambda x: c2st.c2st(x[:3], x[:3]), "too few"),
    ],
)
def test_bad_input_is_a_clear_error(rng, call, message):
    x = rng.normal(size=(N_IMAGES, 4, 3, N_TIMES))
    with pytest.raises(ValueError, match=message):
        call(x)


def test_c2st_is_the_held_out_accuracy_of_its_described_trials_and_their_columns_are_labelled(rng):
    truth = _truth(rng)
    trials = truth[:, None] + _brain_noise(rng, 20)
    white = truth[:, None] + rng.normal(size=(N_IMAGES, 6, N_CHANNELS, N_TIMES))
    described = c2st.describe_trials(white, trials, seed=3)
    assert c2st.held_out_accuracy(described) == c2st.c2st(white, trials, seed=3)
    k, bins = min(c2st.COMPONENTS, N_CHANNELS), len(c2st.bin_frequencies(N_TIMES, SFREQ))
    assert described.features.shape == (2 * N_IMAGES * 6, k * bins + k * (k - 1) // 2)
    assert np.all(np.bincount(described.component[described.component >= 0]) == bins)
    assert np.all(np.bincount(described.frequency_bin[described.frequency_bin >= 0]) == k)
    assert described.labels.mean() == 0.5 and len(np.unique(described.images)) == N_IMAGES
    # A power column is a log10 Welch power of its bin: the AR(1) trials' spectrum, 1 / |1 - 0.8 exp(-iw)|^2,
    # falls about 46-fold (1.7 in log10) from the first bin above 0 (w = 2 pi / 32) to Nyquist; white noise's is flat.

    def fall(rows):
        low, high = ((described.component == 0) & (described.frequency_bin == b) for b in (1, bins - 1))
        return described.features[rows][:, low].mean() - described.features[rows][:, high].mean()

    assert fall(described.labels == 0) == pytest.approx(1.7, abs=0.3) and abs(fall(described.labels == 1)) < 0.3
    np.testing.assert_allclose(c2st.bin_frequencies(N_TIMES, SFREQ)[[0, -1]], [0.0, SFREQ / 2])
    # Scored on a subset of columns: the spectra alone tell white noise from red.
    assert c2st.held_out_accuracy(described, columns=described.component >= 0)["accuracy"] > 0.9
