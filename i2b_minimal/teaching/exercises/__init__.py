"""Check functions for the notebooks' exercises: one module per notebook (``nb00``, ``nb01``, ...).

An exercise asks for a value or a bit of code; the student puts the answer in a
variable and passes it to a check, e.g. ``nb03.check_attention_shape(answer)``.
Every check prints one clear line, right or wrong, with a hint when wrong, and
returns True or False. An answer still set to ``None`` (the placeholder the
notebooks ship with) prints "not answered yet" and returns False without
raising, so the notebooks run from top to bottom as committed.

The helpers below give every check the same voice.
"""

from __future__ import annotations

import math

NOT_ANSWERED = "Not answered yet: replace the None above with your answer and run the cell again."


def unanswered(*answers) -> bool:
    """True, after saying so, when any answer is still the ``None`` placeholder."""
    if any(answer is None for answer in answers):
        print(NOT_ANSWERED)
        return True
    return False


def verdict(ok: bool, right: str, hint: str) -> bool:
    """Print "Right! ..." or "Not quite. Hint: ..." and return ``ok``."""
    print(f"Right! {right}" if ok else f"Not quite. Hint: {hint}")
    return bool(ok)


def as_shape(answer) -> tuple[int, ...] | None:
    """A shape given as a tuple, list or ``torch.Size`` of whole numbers, as a tuple; None if it is not one."""
    try:
        values = tuple(answer)
    except TypeError:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() for v in values):
        return None
    return tuple(int(v) for v in values)


def as_number(answer) -> float | None:
    """A plain number (int, float, numpy or 0-d torch scalar) as a float; None if it is not one."""
    if isinstance(answer, bool) or isinstance(answer, str):
        return None
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def first_wrong_number(answers: dict, expected: dict) -> str | None:
    """The name of the first answer that is not exactly its expected number (None when all are right)."""
    return next((name for name, answer in answers.items() if as_number(answer) != expected[name]), None)
