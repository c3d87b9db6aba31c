"""Notebook 04 (the 1D U-Net): write a residual block; how much padding does an odd-length signal get?"""

from __future__ import annotations

import torch

from . import Case, as_number, check_function, unanswered, verdict


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


def solution_res_block(block, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
    """The forward pass of ``block``, a ``unet.ResBlock``: h (B, C_in, T), temb (B, time_dim) -> (B, C_out, T)."""
    ### BEGIN SOLUTION
    silu = torch.nn.functional.silu
    x = block.conv1(silu(block.norm1(h)))  # GroupNorm -> SiLU -> conv
    x = x + block.time_proj(silu(temb))[:, :, None]  # the step's bias: one per channel, the same at every time
    x = block.conv2(block.dropout(silu(block.norm2(x))))  # GroupNorm -> SiLU -> (dropout) -> conv
    return block.skip(h) + x  # the residual; skip is a 1x1 conv when the width changes
    ### END SOLUTION


def check_res_block(res_block) -> bool | None:
    """Compare ``res_block(block, h, temb)`` with ``unet.ResBlock``'s own forward pass, on a random block."""
    from i2b_minimal.method.unet import ResBlock

    torch.manual_seed(4)
    block = ResBlock(32, 64, time_dim=128, groups=8, dropout=0.0).eval()
    h, temb = torch.randn(2, 32, 50), torch.randn(2, 128)
    silu = torch.nn.functional.silu
    with torch.no_grad():
        expected = block(h, temb)
        first = block.conv1(silu(block.norm1(h)))
        time_bias = block.time_proj(silu(temb))[:, :, None]
        mistakes = [
            (expected - block.skip(h), "add the skip connection: return block.skip(h) + x, not x alone."),
            (block.skip(h) + block.conv2(silu(block.norm2(first))),
             "add the step's bias, block.time_proj(SiLU(temb)), to every time step after the first conv."),
            (block.skip(h) + block.conv2(silu(block.norm2(first + block.time_proj(temb)[:, :, None]))),
             "pass temb through SiLU before block.time_proj."),
            (block.skip(h) + block.conv2(silu(first + time_bias)),
             "normalise with block.norm2 before the second conv."),
        ]
    return check_function(res_block, [Case({"block": block, "h": h, "temb": temb}, expected, mistakes)],
                          "your block matches unet.ResBlock: two GroupNorm -> SiLU -> conv steps, the step's bias "
                          "in between, and the skip around them.")
