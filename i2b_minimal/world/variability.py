"""Trial-to-trial variability of the evoked response, and its exact expectation.

A recorded trial is not the average response plus stationary Gaussian noise. From one
trial to the next each component arrives a little earlier or later and is a little
stronger or weaker (Truccolo et al. 2002, "Trial-to-trial variability of cortical evoked
responses", Clin. Neurophysiol. 113:206; latency jitter is why Woody 1967 aligned trials
before averaging them). The simulated brain draws, for every trial and every component,

- a latency shift ``delta ~ N(0, jitter**2)``, a few milliseconds (more for later, broader components);
- an amplitude gain ``g ~ lognormal`` with ``E[g] = 1``: log g ~ N(-GAIN_SIGMA**2 / 2, GAIN_SIGMA**2).

The gain is positive and skewed, and the jittered time course depends on ``delta``
nonlinearly, so this part of a trial's deviation from the mean is not Gaussian, and it
is locked to the response: it grows where the response is large and vanishes before onset.

The expected response is computed exactly, not by Monte Carlo. A component's time course
is a Gaussian of width ``w`` at latency ``L``; averaged over ``delta`` it is that Gaussian
convolved with the jitter's normal density, a Gaussian at ``L`` of width
``sqrt(w**2 + jitter**2)``, lowered by ``w / sqrt(w**2 + jitter**2)`` (its area is kept).
The gain is independent of the latency and has mean 1, so it leaves that mean unchanged.
The ground truth saved beside the data is therefore the exact mean of the trials, and the
true noise ceiling computed from it stays exact.
"""

from __future__ import annotations

import numpy as np

GAIN_SIGMA = 0.3  # sd of log gain: a component's amplitude varies by about 30% from trial to trial


def time_course(times: np.ndarray, latency: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Gaussian time courses (..., K, T) peaking at ``latency`` (..., K) s, of standard deviation ``width`` (K,)."""
    return np.exp(-0.5 * ((times - latency[..., None]) / width[:, None]) ** 2)


def expected_time_course(times: np.ndarray, latency: np.ndarray, width: np.ndarray,
                         jitter: np.ndarray) -> np.ndarray:
    """The mean of :func:`time_course` over a latency jitter N(0, ``jitter``**2): exact, see the module docstring."""
    broadened = np.sqrt(width**2 + jitter**2)
    return (width / broadened)[:, None] * time_course(times, latency, broadened)


def draw(rng: np.random.Generator, n_trials: int, jitter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial latency shifts (s) and gains (n_trials, K) of the K components whose jitter (K,) is given."""
    shift = rng.standard_normal((n_trials, len(jitter))) * jitter
    gain = np.exp(rng.normal(-0.5 * GAIN_SIGMA**2, GAIN_SIGMA, (n_trials, len(jitter))))
    return shift, gain
