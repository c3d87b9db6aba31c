"""The ridge baseline recovers a planted linear map, alpha by CV on training data only; its Gaussian-residual generator."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from i2b_minimal.baselines import RidgeEncoder
from i2b_minimal.evaluation.gaussian_baseline import GaussianResidualBaseline


def _planted(rng, n=300, n_features=20, shape=(3, 10), noise=0.1):
    """signals = features @ W + noise; features on very different scales, as CLIP's are."""
    features = rng.normal(size=(n, n_features)) * np.logspace(-1, 1, n_features)
    weights = rng.normal(size=(n_features, int(np.prod(shape)))) / np.logspace(-1, 1, n_features)[:, None]
    signals = (features @ weights).reshape(n, *shape) + noise * rng.normal(size=(n, *shape))
    return features, signals


def test_recovers_a_planted_linear_map():
    rng = np.random.default_rng(0)
    features, signals = _planted(rng, n=400)
    model = RidgeEncoder().fit(features[:300], signals[:300])
    pred = model.predict(features[300:])
    assert pred.shape == (100, 3, 10) and pred.dtype == np.float32
    assert r2_score(signals[300:].reshape(100, -1), pred.reshape(100, -1)) > 0.95


def test_alpha_and_weights_match_scikit_learn_ridge_on_the_training_folds():
    rng = np.random.default_rng(1)
    features, signals = _planted(rng, n=120, noise=3.0)
    alphas = np.logspace(-2, 4, 7)
    model = RidgeEncoder(alphas=alphas, cv=4).fit(features, signals)
    # Independent reference: contiguous 4-fold CV with scikit-learn's Ridge, held-out MSE per alpha.
    x = StandardScaler().fit_transform(features)
    y = signals.reshape(len(signals), -1)
    errors = [
        sum(np.sum((Ridge(alpha=a).fit(x[tr], y[tr]).predict(x[te]) - y[te]) ** 2) for tr, te in KFold(4).split(x))
        for a in alphas
    ]
    assert model.alpha_ == alphas[int(np.argmin(errors))]
    np.testing.assert_allclose(model.cv_errors_, np.array(errors) / y.size, rtol=1e-6)
    reference = Ridge(alpha=model.alpha_).fit(x, y).predict(x)
    np.testing.assert_allclose(model.predict(features).reshape(len(y), -1), reference, rtol=1e-4, atol=1e-4)


def test_alpha_follows_the_noise():
    rng = np.random.default_rng(2)
    features, clean = _planted(rng, noise=0.0)
    pure_noise = rng.normal(size=clean.shape)
    alphas = np.logspace(-3, 6, 10)
    assert RidgeEncoder(alphas=alphas).fit(features, clean).alpha_ < 1.0
    with pytest.warns(UserWarning, match="largest alpha"):
        assert RidgeEncoder(alphas=alphas).fit(features, pure_noise).alpha_ >= 1e4


def test_tokens_are_mean_pooled_or_flattened_and_torch_is_accepted():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    tokens = rng.normal(size=(60, 4, 5))
    signals = rng.normal(size=(60, 2, 3))
    pooled = RidgeEncoder(cv=3).fit(tokens.mean(axis=1), signals).predict(tokens.mean(axis=1))
    from_tokens = RidgeEncoder(cv=3).fit(torch.from_numpy(tokens), torch.from_numpy(signals)).predict(tokens)
    np.testing.assert_allclose(from_tokens, pooled, rtol=1e-5, atol=1e-6)
    flat = RidgeEncoder(cv=3, tokens="flatten").fit(tokens, signals)
    with pytest.raises(ValueError, match="15 dimensions but the encoder was fitted on 20"):
        flat.predict(tokens[:, :3])


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="cv must be"):
        RidgeEncoder(cv=1)
    rng = np.random.default_rng(4)
    features, signals = _planted(rng, n=40)
    with pytest.raises(NotFittedError, match="fit"):
        RidgeEncoder().predict(features)
    with pytest.raises(ValueError, match="40 rows but signals have 39"):
        RidgeEncoder().fit(features, signals[:39])
    with pytest.raises(ValueError, match="NaN"):
        RidgeEncoder().fit(np.where(features > 1, np.nan, features), signals)
    with pytest.raises(ValueError, match=r"\(N, C, T\)"):
        RidgeEncoder().fit(features, signals[:, 0])
    with pytest.raises(ValueError, match="5 dimensions but the encoder was fitted on 20"):
        RidgeEncoder().fit(features, signals).predict(features[:, :5])


# -- the generative baseline: ridge + Gaussian residuals -------------------------------------------------


def _separable_trials(rng, n=400, n_reps=3, n_features=10, n_channels=3, n_times=5):
    """Single trials = a planted linear map of the features + noise with covariance S (x) U, both known."""
    features = rng.normal(size=(n, n_features))
    mean = (features @ rng.normal(size=(n_features, n_channels * n_times))).reshape(n, n_channels, n_times)
    mixing = rng.normal(size=(n_channels, n_channels))
    spatial = mixing @ mixing.T + 0.5 * np.eye(n_channels)
    lags = np.abs(np.subtract.outer(np.arange(n_times), np.arange(n_times)))
    temporal = 0.7**lags  # AR(1)-like, unit variance at every time point
    white = rng.normal(size=(n, n_reps, n_channels, n_times))
    noise = np.linalg.cholesky(spatial) @ white @ np.linalg.cholesky(temporal).T
    return features, mean[:, None] + noise, spatial, temporal


def test_gaussian_baseline_recovers_a_separable_noise_covariance():
    rng = np.random.default_rng(5)
    features, trials, spatial, temporal = _separable_trials(rng, n=1000)
    baseline = GaussianResidualBaseline().fit(features, trials)
    fitted = np.kron(baseline.spatial_covariance_, baseline.temporal_covariance_)
    truth = np.kron(spatial, temporal)
    # 3000 trials of 15 values: entries within about 0.03 of the largest (0.06 over seeds 5, 9, 11-13).
    # Ridge's in-sample fit absorbs about 10/1000 of the noise of the 3-trial means: 0.3% of the trial variance.
    np.testing.assert_allclose(fitted, truth, atol=0.08 * np.abs(truth).max())
    assert np.mean(np.diag(baseline.temporal_covariance_)) == pytest.approx(1.0)


def test_gaussian_baseline_samples_have_the_fitted_covariance_and_ridges_mean():
    rng = np.random.default_rng(6)
    features, trials, _, _ = _separable_trials(rng)
    baseline = GaussianResidualBaseline().fit(features, trials)
    draws = baseline.sample(features[:2], k=4000, seed=3)
    assert draws.shape == (2, 4000, 3, 5) and draws.dtype == np.float32
    mean = baseline.predict(features[:2])
    np.testing.assert_array_equal(mean, baseline.ridge.predict(features[:2]))
    deviations = (draws - mean[:, None]).reshape(-1, 15)  # row-major (c, t) order, as np.kron(S, U) indexes
    fitted = np.kron(baseline.spatial_covariance_, baseline.temporal_covariance_)
    # 8000 draws: each covariance entry within a few times sqrt(2 / 8000) = 0.016 of its scale.
    np.testing.assert_allclose(deviations.T @ deviations / len(deviations), fitted, atol=0.06 * np.abs(fitted).max())
    sd = np.sqrt(np.diag(fitted)).reshape(3, 5)
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 4 * sd / np.sqrt(4000))


def test_gaussian_baseline_sampling_is_seeded_per_image_and_reuses_a_fitted_ridge():
    rng = np.random.default_rng(7)
    features, trials, _, _ = _separable_trials(rng, n=60)
    ridge = RidgeEncoder(progress=False).fit(features, trials.mean(axis=1))
    baseline = GaussianResidualBaseline(ridge).fit(features, trials)
    assert baseline.ridge is ridge
    own = GaussianResidualBaseline().fit(features, trials)
    np.testing.assert_allclose(baseline.spatial_covariance_, own.spatial_covariance_)
    all_images = baseline.sample(features, k=5, seed=1)
    # Image i draws from its own stream: the first images of a longer call, the first draws of a larger k.
    np.testing.assert_array_equal(baseline.sample(features[:3], k=5, seed=1), all_images[:3])
    np.testing.assert_array_equal(baseline.sample(features, k=2, seed=1), all_images[:, :2])
    assert not np.allclose(baseline.sample(features, k=5, seed=2), all_images)


def test_gaussian_baseline_bad_input_is_a_clear_error():
    rng = np.random.default_rng(8)
    features, trials, _, _ = _separable_trials(rng, n=40)
    with pytest.raises(NotFittedError, match="fit"):
        GaussianResidualBaseline().sample(features, k=2)
    with pytest.raises(ValueError, match="40 rows but trials have 39"):
        GaussianResidualBaseline().fit(features, trials[:39])
    with pytest.raises(ValueError, match=r"\(N, R, C, T\)"):
        GaussianResidualBaseline().fit(features, trials[:, 0])
    with pytest.raises(ValueError, match="at least 1"):
        GaussianResidualBaseline().fit(features, trials).sample(features, k=0)
