"""The linear baseline: ridge regression from CLIP features to every channel and time point.

The reviewers of arXiv 2509.00787 asked whether a diffusion model is needed
at all. The standard answer in encoding-model research is a linearised
encoding model: one regularised linear map from image features to each
channel x time response (Naselaris et al. 2011, NeuroImage 56:400; Gifford
et al. 2022 fit exactly such maps from DNN features to THINGS-EEG2). This is
it, on the same CLIP features the diffusion model sees.

Design choices, each for a reason:

* **Standardised features** (mean 0, s.d. 1 per feature, with statistics from
  the *training* set only). The ridge penalty ``alpha * ||w||^2`` punishes
  every weight equally, so it is only fair when every feature is on the same
  scale; CLIP dimensions are not. Using training statistics keeps every
  number learned from the test set out of the model.
* **Alpha by cross-validation on the training set** (scikit-learn's
  ``RidgeCV``). With ``cv=5`` the folds are contiguous, not shuffled: the
  THINGS training images are ordered by concept, so each fold holds out
  whole concepts, like the test set, whose concepts never appear in training.
  One alpha is shared by all channels and time points.
* **Token sequences** (n, L, D) are mean-pooled over tokens by default
  (``tokens="mean"``), or flattened to L * D features (``tokens="flatten"``).
  The pipeline passes the pooled CLIP embedding (n, P), which is used as is.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler

from .erp import as_float_array

DEFAULT_ALPHAS = np.logspace(-2, 6, 17)


class RidgeEncoder:
    """Ridge regression ``features (N, F) -> signals (N, C, T)``, alpha chosen by CV.

    ``alphas``: the grid searched (default ``np.logspace(-2, 6, 17)``, wide
    enough for 16540 THINGS-EEG2 images as well as a few hundred synthetic
    ones). ``cv``: an int for contiguous K-fold, or ``None`` for scikit-learn's
    efficient leave-one-out. After :meth:`fit`, ``alpha_`` holds the chosen
    alpha. Accepts numpy arrays or torch tensors; returns numpy float32.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, cv: int | None = 5, tokens: str = "mean"):
        if tokens not in ("mean", "flatten"):
            raise ValueError(f"tokens must be 'mean' or 'flatten', got {tokens!r}")
        self.alphas = np.asarray(alphas, dtype=np.float64)
        self.cv = cv
        self.tokens = tokens
        self._scaler: StandardScaler | None = None
        self._ridge: RidgeCV | None = None
        self._signal_shape: tuple[int, int] | None = None

    @property
    def alpha_(self) -> float:
        """The regularisation strength that cross-validation picked."""
        return float(self._fitted_ridge().alpha_)

    def fit(self, features, signals) -> RidgeEncoder:
        """Fit on training ``features`` (N, F) or (N, L, D) and ``signals`` (N, C, T)."""
        x = self._features(features)
        y = as_float_array(signals, "signals", ("N", "C", "T"))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"features have {x.shape[0]} rows but signals have {y.shape[0]}; they must pair up")
        n_folds = self.cv if isinstance(self.cv, int) else x.shape[0]
        if x.shape[0] < max(n_folds, 2):
            raise ValueError(f"{x.shape[0]} training examples are too few for cv={self.cv}")
        self._scaler = StandardScaler().fit(x)
        self._ridge = RidgeCV(alphas=self.alphas, cv=self.cv)
        self._ridge.fit(self._scaler.transform(x), y.reshape(len(y), -1))
        self._signal_shape = y.shape[1:]
        return self

    def predict(self, features) -> np.ndarray:
        """Predicted signals (N, C, T), float32, for ``features`` shaped as in :meth:`fit`."""
        ridge = self._fitted_ridge()
        x = self._features(features)
        if x.shape[1] != self._scaler.n_features_in_:
            raise ValueError(
                f"features have {x.shape[1]} dimensions but the encoder was fitted on "
                f"{self._scaler.n_features_in_}; use the same CLIP encoder and pooling"
            )
        flat = ridge.predict(self._scaler.transform(x))
        return flat.reshape(len(x), *self._signal_shape).astype(np.float32)

    def _features(self, features) -> np.ndarray:
        x = as_float_array(features, "features")
        if x.ndim == 3:
            x = x.mean(axis=1) if self.tokens == "mean" else x.reshape(len(x), -1)
        if x.ndim != 2:
            raise ValueError(f"features must have shape (N, F) or tokens (N, L, D), got shape {x.shape}")
        return x

    def _fitted_ridge(self) -> RidgeCV:
        if self._ridge is None:
            raise NotFittedError("RidgeEncoder is not fitted yet; call .fit(features, signals) first")
        return self._ridge
