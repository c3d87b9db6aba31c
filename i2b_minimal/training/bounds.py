"""The valid values of a number setting, checked when a settings dataclass is made.

A NaN decay, a zero step count or a negative warm-up does not fail where it is
given: it trains a NaN or an untrained model and exits 0. So every number setting
of ``TrainConfig`` (and of ``SamplingSettings``) carries a :class:`Bounds`, and
:func:`check_setting` refuses a value outside them with a message naming the
option, its valid range and the value given.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    """``low <= value <= high`` (``<`` where open), finite, a whole number if ``whole``; ``meaning`` of special values."""

    low: float | None = None
    high: float | None = None
    whole: bool = False
    low_open: bool = False
    high_open: bool = False
    meaning: str = ""  # e.g. "0 turns checkpoints off": said in the message, so the value is never a surprise

    def admits(self, value) -> bool:
        kind = numbers.Integral if self.whole else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        limits = [f"{'>' if self.low_open else '>='} {self.low:g}" if self.low is not None else "",
                  f"{'<' if self.high_open else '<='} {self.high:g}" if self.high is not None else ""]
        text = f"{'a whole number' if self.whole else 'a finite number'} {' and '.join(x for x in limits if x)}"
        return f"{text.rstrip()} ({self.meaning})" if self.meaning else text.rstrip()


def whole(low: int, meaning: str = "") -> Bounds:
    """A count: a whole number ``>= low``."""
    return Bounds(low, whole=True, meaning=meaning)


def check_setting(name: str, value, bounds: Bounds, option: str | None = None) -> None:
    """Raise ``ValueError`` naming the command's ``--option`` (default: ``name``) and the field ``name`` when
    ``value`` (or an item of a tuple) is out of bounds."""
    items = value if isinstance(value, tuple) else (value,)
    if not all(bounds.admits(item) for item in items):
        what = f"a list in which every item is {bounds}" if isinstance(value, tuple) else str(bounds)
        flag = (option or name).replace("_", "-")
        raise ValueError(f"--{flag} ({name}) must be {what}, not {value!r}")
