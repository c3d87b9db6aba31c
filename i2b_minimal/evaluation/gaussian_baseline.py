"""A generative baseline: ridge's prediction plus Gaussian trial-to-trial noise fitted to the training residuals.

Ridge (:mod:`~i2b_minimal.evaluation.baselines`) predicts one mean response per
image. A diffusion model generates single trials, so the fair competitor for
any claim about realistic trials is the simplest generator of them: a single
trial of image x is ``ridge(x) + noise``, with the noise Gaussian and its
covariance fitted to the training data. Its mean over samples is ridge's
prediction exactly, so its ``conditional_mean`` readout is :meth:`predict`.

Design choices, each for a reason:

* **Residuals of single training trials about ridge's fit** of their image,
  ``y_ik - ridge(x_i)``, rather than about each image's mean of its own
  repetitions. Single trials given an image's features vary by both what
  ridge misses about the image and the trial's noise, and this residual holds
  both: it is the spread of ``y | x`` under the linear-Gaussian model, what a
  generator of trials should reproduce. It exists with one repetition per
  image too (THINGS-MEG's training split), where a mean of the image's own
  repetitions would leave no residual. It is measured in sample, so it is a
  little too small by what ridge overfits; in EEG and MEG the trial noise is
  many times the image-specific signal, so that share is small.
* **A separable (Kronecker) covariance**, ``Cov(y_ct, y_c't') = S[c, c'] U[t, t']``
  (de Munck, Huizenga, Waldorp & Heethaar 2002, IEEE Trans. Signal Process.
  50:1565, the usual model of spatio-temporal M/EEG noise): a spatial
  covariance S (C x C) and a temporal one U (T x T). A full covariance of the
  C*T values per trial has (C T)^2 / 2 entries: 1.4 million for EEG's
  17 x 100 (more than THINGS-EEG2's 66,160 training trials can pin down
  without heavy shrinkage) and 2.9 billion for MEG's 271 x 281 (23 GB).
  The separable one has C^2/2 + T^2/2 (about 5,000 for EEG, 76,000 for MEG),
  each estimated from millions of values, so it needs no shrinkage.
* **Moment estimates**: with residuals r (C x T) of J trials, ``E[r r^T] = S tr(U)``
  and ``E[r^T r] = U tr(S)``, so ``S = mean(r r^T) / T`` (the channels'
  covariance, averaged over time) and ``U = T mean(r^T r) / mean(||r||^2)``
  (the temporal covariance scaled to mean variance 1) give
  ``S (x) U = mean(r r^T) (x) mean(r^T r) / mean(||r||^2)``, consistent for
  separable noise, in one pass, without the flip-flop iterations of the
  maximum-likelihood estimate (Dutilleul 1999, J. Stat. Comput. Simul. 64:105).
* **Sampling** ``y = ridge(x) + L_S Z L_U^T`` with ``Z`` standard normal
  (C x T) and ``L L^T`` the covariances: then ``Cov(y) = S (x) U``. Image i
  of a call draws from its own stream, seeded with (seed, i): the first
  images of a longer call and the first draws of a larger k are the same.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

from i2b_minimal.datasets.arrays import as_float_array

from .baselines import RidgeEncoder

CHUNK = 256  # training images whose residuals are held at once (float64): memory, not results


class GaussianResidualBaseline:
    """``ridge(features) + N(0, S (x) U)`` single trials, fitted on training trials (N, R, C, T).

    ``ridge``: a fitted :class:`~i2b_minimal.evaluation.baselines.RidgeEncoder`
    to reuse (fitted on the training means of the same features, as the ridge
    row of an evaluation is), or None to fit one on them in :meth:`fit`. After
    :meth:`fit`: ``spatial_covariance_`` S (C, C) and ``temporal_covariance_``
    U (T, T), with ``Cov(y_ct, y_c't') = S[c, c'] U[t, t']``.
    """

    def __init__(self, ridge: RidgeEncoder | None = None):
        self.ridge = ridge
        self.spatial_covariance_: np.ndarray | None = None
        self.temporal_covariance_: np.ndarray | None = None
        self._roots: tuple[np.ndarray, np.ndarray] | None = None  # L_S and L_U, for sampling

    def fit(self, features, trials, progress: bool = False) -> GaussianResidualBaseline:
        """Fit on training ``features`` (N, F) and their single ``trials`` (N, R, C, T); ``progress`` for ridge's CV."""
        trials = as_float_array(trials, "trials", ("N", "R", "C", "T"))
        if len(features) != len(trials):
            raise ValueError(f"features have {len(features)} rows but trials have {len(trials)}; they must pair up")
        if self.ridge is None:
            self.ridge = RidgeEncoder(progress=progress).fit(features, trials.mean(axis=1))
        n, _, c, t = trials.shape
        spatial, temporal, power = np.zeros((c, c)), np.zeros((t, t)), 0.0
        for start in range(0, n, CHUNK):
            rows = slice(start, start + CHUNK)
            residual = trials[rows] - self.ridge.predict(features[rows]).astype(np.float64)[:, None]
            spatial += np.einsum("nrct,nrdt->cd", residual, residual, optimize=True)
            temporal += np.einsum("nrct,nrcs->ts", residual, residual, optimize=True)
            power += float(np.sum(residual**2))
        n_trials = trials.shape[0] * trials.shape[1]
        self.spatial_covariance_ = spatial / (n_trials * t)
        self.temporal_covariance_ = temporal * t / power
        self._roots = _square_root(self.spatial_covariance_), _square_root(self.temporal_covariance_)
        return self

    def predict(self, features) -> np.ndarray:
        """The mean single trial per image, (n, C, T): ridge's prediction (the ``conditional_mean`` readout)."""
        self._check_fitted()
        return self.ridge.predict(features)

    def sample(self, features, k: int, seed: int = 0) -> np.ndarray:
        """``k`` single trials per image, (n, k, C, T) float32; image i draws from the stream (seed, i)."""
        self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be at least 1 sample per image, got {k}")
        mean = self.predict(features).astype(np.float64)
        spatial_root, temporal_root = self._roots
        out = np.empty((len(mean), k, *mean.shape[1:]), dtype=np.float32)
        for i, image_mean in enumerate(mean):
            white = np.random.default_rng([seed, i]).standard_normal((k, *image_mean.shape))
            out[i] = image_mean + spatial_root @ white @ temporal_root.T
        return out

    def _check_fitted(self) -> None:
        if self._roots is None:
            raise NotFittedError("GaussianResidualBaseline is not fitted yet; call .fit(features, trials) first")


def _square_root(covariance: np.ndarray) -> np.ndarray:
    """L with L L^T = covariance, from its eigenvectors; tiny negative rounding eigenvalues count as 0."""
    values, vectors = np.linalg.eigh(covariance)
    return vectors * np.sqrt(np.clip(values, 0.0, None))
