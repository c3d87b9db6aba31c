"""The ridge baseline: recovers a planted linear map and picks alpha by CV on training data only."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from i2b_minimal.baselines import RidgeEncoder


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
