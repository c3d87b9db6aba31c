"""Notebook 10 (real data and the prosthesis): write a data check; which direction the model goes; data sizes."""

from __future__ import annotations

import math

import numpy as np

from . import Case, as_number, check_function, unanswered, verdict

EEG_TRAINING_SHAPE = (16540, 4, 17, 100)  # one subject's THINGS-EEG2 training array (data/README.md)


def eeg_training_gigabytes() -> float:
    """Size in GB (1e9 bytes) of one subject's THINGS-EEG2 training array in float32."""
    return math.prod(EEG_TRAINING_SHAPE) * 4 / 1e9


def check_direction(answer) -> bool | None:
    """Is image -> brain signal "encoding" or "decoding"?"""
    if unanswered(answer):
        return None
    given = str(answer).strip().lower()
    return verdict(given == "encoding",
                   "it predicts the brain's response to a stimulus. Decoding goes the other way, from brain "
                   "signals to what was seen.",
                   "which way does information flow: from the picture to the brain signal, or back?")


def check_training_gigabytes(answer) -> bool | None:
    """Gigabytes of one subject's THINGS-EEG2 training array (16540, 4, 17, 100) in float32."""
    if unanswered(answer):
        return None
    expected = eeg_training_gigabytes()
    value = as_number(answer)
    # Accept GB (1e9 bytes) and GiB (2**30 bytes): both are honest answers.
    ok = value is not None and any(math.isclose(value, expected * 1e9 / unit, rel_tol=0.03) for unit in (1e9, 2**30))
    return verdict(ok, f"{expected:.2f} GB ({expected * 1e9 / 2**30:.2f} GiB) per subject: it fits in memory; "
                   "the CLIP ViT-L/14 tokens of the same images are much larger.",
                   "multiply the four dimensions, then 4 bytes per float32 value, and divide by 1e9.")


def solution_bad_value_count(signals: np.ndarray) -> int:
    """How many values of ``signals`` are NaN or infinite (the check loaders run on every file they read)."""
    ### BEGIN SOLUTION
    return int(np.count_nonzero(~np.isfinite(signals)))
    ### END SOLUTION


def check_bad_value_count(bad_value_count) -> bool | None:
    """Compare ``bad_value_count(signals)`` with numpy on a (20, 4, 17, 100) array holding 7 NaN and 3 Inf values."""
    signals = np.random.default_rng(10).normal(size=(20, 4, 17, 100)).astype(np.float32)
    flat = signals.reshape(-1)
    flat[[5, 900, 4321, 7000, 12345, 50000, 99999]] = np.nan
    flat[[17, 2024, 80000]] = [np.inf, -np.inf, np.inf]
    mistakes = [(7, "count the infinite values too: np.isfinite is False for NaN, +Inf and -Inf."),
                (signals.size - 10, "count the values that are *not* finite.")]
    return check_function(bad_value_count, [Case({"signals": signals}, 10, mistakes)],
                          "10 bad values of 136,000: one would be enough to turn a whole training run's loss into NaN.")
