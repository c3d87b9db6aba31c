"""Notebook 03 (cross-attention): write the attention weights; the shape of the weights inside the U-Net."""

from __future__ import annotations

import math

import torch

from . import Case, as_shape, check_function, unanswered, verdict

# The question: a batch of 8 EEG signals (8, 17, 100) through unet.UNet1D(17, cond_dim=128,
# channel_mults=(1, 2, 2)) (num_heads=4, the default), conditioned on tokens of shape (8, 65, 128).
# Level 1 ("down1") runs at 100 / 2 = 50 time steps; the weights are (batch, heads, queries, keys).
EXPECTED = (8, 4, 50, 65)


def check_attention_shape(answer) -> bool | None:
    """Shape of the cross-attention weights at level ``down1`` for the notebook's set-up: (8, 4, 50, 65)."""
    if unanswered(answer):
        return None
    shape = as_shape(answer)
    if shape is None or len(shape) != 4:
        return verdict(False, "", "give four numbers, (batch, heads, queries, keys), e.g. as a tuple.")
    batch, heads, queries, keys = shape
    if (batch, heads) != EXPECTED[:2]:
        return verdict(False, "", "the first two axes are the batch (8 signals) and the heads (num_heads=4).")
    if keys != EXPECTED[3]:
        return verdict(False, "", "the keys are the image tokens: how many tokens does the condition hold?")
    if queries != EXPECTED[2]:
        return verdict(False, "", "the queries are the time steps of the feature map at that level: level 0 "
                       "has all 100, and every level halves the time axis.")
    return verdict(True, "one weight per (signal, head, time step, image token); each row over the 65 "
                   "tokens sums to 1.", "")


def solution_attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) over the keys: q (B, H, T_q, d), k (B, H, T_k, d) -> (B, H, T_q, T_k)."""
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T_q, T_k): one score per query and key
    return scores.softmax(dim=-1)  # over the keys: each query's weights sum to 1
    ### END SOLUTION


def check_attention_weights(attention_weights) -> bool | None:
    """Compare ``attention_weights(q, k)`` with ``attention.scaled_dot_product_attention`` on random heads."""
    from i2b_minimal.method.attention import scaled_dot_product_attention

    generator = torch.Generator().manual_seed(3)
    q, k = torch.randn(2, 4, 25, 16, generator=generator), torch.randn(2, 4, 65, 16, generator=generator)
    scores = q @ k.transpose(-2, -1)
    mistakes = [
        (scores.softmax(dim=-1), "divide the scores by sqrt(d), the head width q.shape[-1], before the softmax."),
        ((scores / 16).softmax(dim=-1), "divide by the square root of d, not by d itself."),
        ((scores / 4).softmax(dim=-2), "take the softmax over the keys (the last axis): each query's row sums to 1."),
        (scores / 4, "turn the scaled scores into weights with a softmax over the keys."),
    ]
    expected = scaled_dot_product_attention(q, k, torch.zeros_like(k))[1]
    return check_function(attention_weights, [Case({"q": q, "k": k}, expected, mistakes)],
                          "your weights match attention.scaled_dot_product_attention: one row of weights per "
                          "time step (query), summing to 1 over the image tokens (keys).")
