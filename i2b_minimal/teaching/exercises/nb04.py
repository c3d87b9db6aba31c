"""Notebook 04 (the 1D U-Net): how much padding does an odd-length signal get?"""

from __future__ import annotations

from . import as_number, unanswered, verdict


def padded_length(n_times: int, n_levels: int) -> int:
    """The U-Net halves time n_levels - 1 times, so it pads to the next multiple of 2**(n_levels - 1)."""
    multiple = 2 ** (n_levels - 1)
    return -(-n_times // multiple) * multiple


def check_padded_length(answer, n_times: int = 281, channel_mults=(1, 2, 2, 2)) -> bool | None:
    """The length a (B, 271, ``n_times``) MEG signal is padded to inside a U-Net with these ``channel_mults``."""
    if unanswered(answer):
        return None
    expected = padded_length(n_times, len(channel_mults))
    return verdict(as_number(answer) == expected,
                   f"{len(channel_mults)} levels halve time {len(channel_mults) - 1} times, so the length must be a "
                   f"multiple of {2 ** (len(channel_mults) - 1)}: {n_times} -> {expected}, cropped back to "
                   f"{n_times} at the output.",
                   f"count the levels (len(channel_mults) = {len(channel_mults)}); each one but the last halves "
                   "the time axis, so the length must divide evenly that many times. Round up, never down.")
