"""The linear baseline: ridge regression from CLIP features to every channel and time point.

The reviewers of arXiv 2509.00787 asked whether a diffusion model is needed
at all. The standard answer in encoding-model research is a linearised
encoding model: one regularised linear map from image features to each
channel x time response (Naselaris et al. 2011, NeuroImage 56:400; Gifford
et al. 2022 fit such linear maps from DNN features to THINGS-EEG2). This is
it, on the same CLIP features the diffusion model sees.

Design choices, each for a reason:

* **Standardised features** (mean 0, s.d. 1 per feature, with statistics from
  the *training* set only). The ridge penalty ``alpha * ||w||^2`` punishes
  every weight equally, so it is only fair when every feature is on the same
  scale; CLIP dimensions are not. Using training statistics keeps every
  number learned from the test set out of the model.
* **Alpha by K-fold cross-validation on the training set only**: the alpha
  with the lowest held-out mean squared error, summed over the folds. The
  folds are contiguous, not shuffled: THINGS training images are ordered by
  concept, so each fold holds out whole concepts, like the test set, whose
  concepts never occur in training. One alpha serves all channels and times.
* **Ridge in SVD form** (Hastie, Tibshirani & Friedman 2009, *The Elements of
  Statistical Learning*, eq. 3.47): with ``X = U S V^T`` the solution for any
  alpha is ``V diag(s / (s^2 + alpha)) U^T y``, so one SVD per fold serves
  the whole alpha grid. scikit-learn's ``RidgeCV(cv=5)`` refits from scratch
  for every alpha and fold: on 6000 x 768 random features to 17 x 100
  outputs it took 457 s, this code about 50 s (2 busy shared CPU cores).
  The intercept is not penalised (features and signals are centred first).
* **Token sequences** (n, L, D) are mean-pooled over tokens by default
  (``tokens="mean"``), or flattened to L * D features (``tokens="flatten"``).
  The pipeline passes the pooled CLIP embedding (n, P), which is used as is.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from .erp import as_float_array

DEFAULT_ALPHAS = np.logspace(-2, 7, 19)


class RidgeEncoder:
    """Ridge regression ``features (N, F) -> signals (N, C, T)``, alpha chosen by CV.

    ``alphas``: the grid searched (default ``np.logspace(-2, 7, 19)``, half a
    decade apart, wide enough for 16540 THINGS-EEG2 images as well as a few
    hundred synthetic ones). ``cv``: the number of contiguous folds. After
    :meth:`fit`: ``alpha_`` (the chosen alpha) and ``cv_errors_`` (held-out
    MSE per alpha). ``progress`` shows a bar over the folds. Accepts numpy
    arrays or torch tensors; returns float32.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, cv: int = 5, tokens: str = "mean", progress: bool = True):
        if tokens not in ("mean", "flatten"):
            raise ValueError(f"tokens must be 'mean' or 'flatten', got {tokens!r}")
        if not isinstance(cv, int) or cv < 2:
            raise ValueError(f"cv must be an integer number of folds >= 2, got {cv!r}")
        self.alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())
        if self.alphas.size == 0 or np.any(self.alphas < 0):
            raise ValueError(f"alphas must be a non-empty list of non-negative numbers, got {alphas!r}")
        self.cv = cv
        self.tokens = tokens
        self.progress = progress
        self.cv_errors_: np.ndarray | None = None
        self._alpha: float | None = None
        self._scaler: StandardScaler | None = None
        self._coef: np.ndarray | None = None
        self._intercept: np.ndarray | None = None
        self._signal_shape: tuple[int, ...] | None = None

    @property
    def alpha_(self) -> float:
        """The regularisation strength that cross-validation picked."""
        self._check_fitted()
        return self._alpha

    def fit(self, features, signals) -> RidgeEncoder:
        """Fit on training ``features`` (N, F) or (N, L, D) and ``signals`` (N, C, T)."""
        x = self._features(features).astype(np.float64)
        y = as_float_array(signals, "signals", ("N", "C", "T"))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"features have {x.shape[0]} rows but signals have {y.shape[0]}; they must pair up")
        if x.shape[0] < 2 * self.cv:
            raise ValueError(f"{x.shape[0]} training examples are too few for cv={self.cv} folds")
        self._signal_shape = y.shape[1:]
        y = y.reshape(len(y), -1).astype(np.float64)
        self._scaler = StandardScaler().fit(x)
        x = self._scaler.transform(x)

        self.cv_errors_ = np.zeros(len(self.alphas))
        folds = np.array_split(np.arange(len(x)), self.cv)
        for held_out in tqdm(folds, desc="ridge CV folds", disable=not self.progress, leave=False):
            train = np.ones(len(x), dtype=bool)
            train[held_out] = False
            x_mean, y_mean, s, vt, uty = _centred_svd(x[train], y[train])
            rotated = (x[held_out] - x_mean) @ vt.T  # held-out features in the SVD basis
            for k, alpha in enumerate(self.alphas):
                pred = rotated @ (_shrinkage(s, alpha)[:, None] * uty) + y_mean
                self.cv_errors_[k] += np.sum((pred - y[held_out]) ** 2)
        self.cv_errors_ /= y.size
        best = int(np.argmin(self.cv_errors_))
        if best == len(self.alphas) - 1 and len(self.alphas) > 1:
            # The strongest penalty won: the features predict little beyond the mean response.
            warnings.warn(
                f"cross-validation chose the largest alpha, {self.alphas[best]:g}: the features barely "
                "predict the signals; pass larger alphas= to be sure this is the best",
                stacklevel=2,
            )
        self._alpha = float(self.alphas[best])
        x_mean, y_mean, s, vt, uty = _centred_svd(x, y)
        self._coef = vt.T @ (_shrinkage(s, self._alpha)[:, None] * uty)
        self._intercept = y_mean - x_mean @ self._coef
        return self

    def predict(self, features) -> np.ndarray:
        """Predicted signals (N, C, T), float32, for ``features`` shaped as in :meth:`fit`."""
        self._check_fitted()
        x = self._features(features)
        if x.shape[1] != self._scaler.n_features_in_:
            raise ValueError(
                f"features have {x.shape[1]} dimensions but the encoder was fitted on "
                f"{self._scaler.n_features_in_}; use the same CLIP encoder and pooling"
            )
        flat = self._scaler.transform(x) @ self._coef + self._intercept
        return flat.reshape(len(x), *self._signal_shape).astype(np.float32)

    def _features(self, features) -> np.ndarray:
        x = as_float_array(features, "features")
        if x.ndim == 3:
            x = x.mean(axis=1) if self.tokens == "mean" else x.reshape(len(x), -1)
        if x.ndim != 2:
            raise ValueError(f"features must have shape (N, F) or tokens (N, L, D), got shape {x.shape}")
        return x

    def _check_fitted(self) -> None:
        if self._coef is None:
            raise NotFittedError("RidgeEncoder is not fitted yet; call .fit(features, signals) first")


def _centred_svd(x: np.ndarray, y: np.ndarray):
    """Centre ``x`` (n, F) and ``y`` (n, K), then ``x = U diag(s) V^T``.

    Returns ``x_mean, y_mean, s, vt, U^T y``. Centring first leaves the
    intercept unpenalised. The ridge weights for any alpha are then
    ``V diag(s / (s^2 + alpha)) U^T y`` (ESL eq. 3.47): no refit per alpha.
    """
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    u, s, vt = np.linalg.svd(x - x_mean, full_matrices=False)
    return x_mean, y_mean, s, vt, u.T @ (y - y_mean)


def _shrinkage(s: np.ndarray, alpha: float) -> np.ndarray:
    # Ridge shrinks each singular direction by s^2 / (s^2 + alpha); divided by s for the weights.
    return s / (s**2 + alpha)
