"""Notebook 10 (real data and the prosthesis): which direction the model goes, and what real data weigh."""

from __future__ import annotations

import math

from . import as_number, unanswered, verdict

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
