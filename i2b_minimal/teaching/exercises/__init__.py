"""Check functions for the notebooks' exercises: one module per notebook (``nb00``, ``nb01``, ...).

Two kinds of exercise, each checked by one call that prints one clear line,
right or wrong, with a hint when wrong:

* **Questions** ask for a value: the learner puts it in a variable and passes it
  to a check, e.g. ``nb03.check_attention_shape(answer)``.
* **Code exercises** ask for a function (Neuromatch Academy style). The notebook
  holds a stub whose body raises ``NotImplementedError``; the learner writes the
  body and runs ``nbXX.check_<name>(<name>)``, which calls the function on random
  inputs and compares it with the library (:func:`check_function`): the shape
  first, then the known mistakes of that exercise, a flipped sign, a wrong scale,
  and at last the values.

A check returns True (right) or False (wrong). While an answer is still the
``None`` placeholder, or the stub still raises ``NotImplementedError``, it says
"not answered yet" / "not done yet" and returns None, which a notebook does
not display; so the notebooks run from top to bottom as committed.

**Solutions.** Every code exercise's reference solution is ``solution_<name>`` in
the notebook's module, its body between nbgrader's ``### BEGIN SOLUTION`` and
``### END SOLUTION`` markers. In the notebook the solution is shown in the one
convention used for every exercise: a collapsed markdown cell right after the
exercise, ``<details><summary>Solution</summary> ... </details>``. The tests
check that each notebook's copy is the library's solution, and run it through
its check.

The helpers below give every check the same voice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

NOT_ANSWERED = "Not answered yet: replace the None above with your answer and run the cell again."
NOT_DONE = "Not done yet: {name} still raises NotImplementedError. Write its body, then run the cell again."


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


def check_numbers(answers: dict, expected: dict, hint, praise: str) -> bool | None:
    """A check of several exact numbers at once: ``None`` while any is unanswered, else one verdict line.

    ``hint(name)`` says what to look at when the answer called ``name`` is the first wrong one.
    """
    if unanswered(*answers.values()):
        return None
    wrong = next((name for name, answer in answers.items() if as_number(answer) != expected[name]), None)
    if wrong:
        return verdict(False, "", hint(wrong))
    return verdict(True, praise, "")


# -- code exercises ------------------------------------------------------------------------------------


@dataclass
class Case:
    """One call of the learner's function: its ``inputs``, the library's ``expected`` result, known ``mistakes``.

    ``mistakes`` pairs the result of a plausible wrong solution with the hint
    for it, e.g. ``[(scores_without_sqrt.softmax(-1), "divide the scores by sqrt(d)")]``.
    ``label`` names the case in a hint when a check runs several (e.g. "for v_prediction").
    """

    inputs: dict
    expected: object
    mistakes: Sequence[tuple[object, str]] = field(default_factory=list)
    label: str = ""


def check_function(function: Callable, cases: Sequence[Case], right: str) -> bool | None:
    """Run the learner's ``function`` on every case; say the first thing wrong, or ``right``."""
    name = getattr(function, "__name__", "your function")
    for case in cases:
        where = f"{case.label}: " if case.label else ""
        try:
            result = function(**case.inputs)
        except NotImplementedError:
            print(NOT_DONE.format(name=name))
            return None
        except Exception as error:  # the learner's code: any error is a hint, not a crash of the notebook
            return verdict(False, "", f"{where}{name} raised {type(error).__name__}: {error}")
        problem = diagnose(result, case.expected, case.mistakes)
        if problem:
            return verdict(False, "", where + problem)
    return verdict(True, right, "")


def diagnose(result, expected, mistakes: Sequence[tuple[object, str]] = ()) -> str | None:
    """What is wrong with ``result`` against ``expected``, in one phrase; None when they agree.

    In order: not numbers, the shape (naming swapped last axes), NaN or infinity,
    the exercise's known ``mistakes``, a flipped sign, a constant scale factor,
    and the values (the largest difference and where it is).
    """
    expected = _as_float64(expected)
    got = _as_float64(result)
    if got is None:
        return f"return a tensor or an array of numbers, not {type(result).__name__}."
    if got.shape != expected.shape:
        if expected.ndim >= 2 and got.shape == expected.shape[:-2] + expected.shape[:-3:-1]:
            return f"the shape {got.shape} has its last two axes swapped: expected {expected.shape}."
        return f"the shape is {got.shape}, expected {expected.shape}."
    if not np.isfinite(got).all():
        return "the result contains NaN or infinity."
    if _close(got, expected):
        return None
    for wrong, hint in mistakes:
        if _close(got, _as_float64(wrong)):
            return hint
    if _close(got, -expected):
        return "the sign is flipped: your result is minus the expected one."
    energy = float((expected * expected).sum())
    scale = float((got * expected).sum()) / energy if energy > 0 else 0.0
    if expected.size > 1 and scale != 0 and _close(got, scale * expected):  # any number is a multiple of another
        return f"your result is {scale:.4g} times the expected one: a scale factor is wrong."
    worst = np.unravel_index(int(np.argmax(np.abs(got - expected))), got.shape)
    return (f"the values differ (largest difference {abs(got[worst] - expected[worst]):.3g}, at index "
            f"{tuple(int(i) for i in worst)}): compare each step with the formula in the docstring.")


def _as_float64(values) -> np.ndarray | None:
    try:
        return torch.as_tensor(values).detach().cpu().double().numpy()
    except (TypeError, ValueError, RuntimeError):
        return None


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(b).max(initial=0))))
