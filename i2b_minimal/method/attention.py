"""Attention: how each time step of the signal listens to the image.

The U-Net's feature map is a sequence over time: one token per time step, of
width C. Attention lets every one of those tokens gather information from a set
of other tokens, weighted by how well they match (Vaswani et al. 2017, eq. 1):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V

* **Cross-attention** (the conditioning of arXiv 2509.00787): the queries Q come
  from the signal, the keys K and values V from the image tokens (CLIP's class
  and patch tokens) projected to the model width. Row ``i`` of the softmax says
  how much time step ``i`` takes from each image token; notebooks plot it.
* **Self-attention**: Q, K and V all come from the signal, so distant time
  steps can exchange information in one layer. It is quadratic in the length,
  so the U-Net offers it only at its low-resolution levels (``self_attention=True``).

**Shared keys and values.** With ``key_value_heads=1`` every query head reads
the same single key and value head (multi-query attention, Shazeer 2019; grouped
query attention, Ainslie et al. 2023, shares one per group of heads). The heads
still look at the image differently, through their own queries; what is shared
is the image's side, which here is computed for 50-65 image tokens in every
layer, often more rows than the signal has time steps at the deep levels. The
U-Net keeps one per head by default, the textbook multi-head layer: sharing one
trained faster but scored lower on the validation split
(``benchmarks/results/unet_speed.md``).

The arithmetic is written out in :func:`scaled_dot_product_attention`, because
reading it is the point, and that is what runs whenever the weights are asked
for (the attention maps of notebook 03). Training never looks at the weights, so
it calls PyTorch's fused ``torch.nn.functional.scaled_dot_product_attention``,
the same formula in one kernel that never stores the (T, L) weight matrix for
the backward pass: faster, and less memory. The tests check that both agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d)) V (Vaswani et al. 2017, eq. 1), for every head at once.

    q: (B, H, T_q, d); k, v: (B, H, T_k, d). Returns the output (B, H, T_q, d)
    and the attention weights (B, H, T_q, T_k), whose rows sum to one.
    """
    # Dividing by sqrt(d) keeps the dot products at unit scale whatever the head
    # width, so the softmax does not saturate (Vaswani et al. 2017, Sec. 3.2.1).
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, Sec. 3.2.2), with optionally shared keys and values.

    ``width`` is the query width (the U-Net's channels at this level); keys and
    values are projected from ``context_dim`` (the image token width). The width
    is split into ``num_heads`` heads that attend independently, so different
    heads can follow different image tokens. ``key_value_heads`` (default:
    ``num_heads``) key and value heads serve them, each shared by
    ``num_heads // key_value_heads`` query heads (Shazeer 2019; Ainslie et al. 2023).
    """

    def __init__(self, width: int, context_dim: int | None = None, num_heads: int = 4,
                 key_value_heads: int | None = None):
        super().__init__()
        key_value_heads = num_heads if key_value_heads is None else key_value_heads
        if width % num_heads != 0:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}; pick a num_heads that divides it")
        if key_value_heads < 1 or num_heads % key_value_heads != 0:
            raise ValueError(f"key_value_heads {key_value_heads} must divide num_heads {num_heads}")
        self.num_heads, self.key_value_heads = num_heads, key_value_heads
        context_dim = width if context_dim is None else context_dim
        head_dim = width // num_heads
        self.to_q = nn.Linear(width, width, bias=False)
        self.to_k = nn.Linear(context_dim, key_value_heads * head_dim, bias=False)
        self.to_v = nn.Linear(context_dim, key_value_heads * head_dim, bias=False)
        self.to_out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                return_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (B, T, width); context: (B, L, context_dim), or None to attend to x itself.

        Returns the output (B, T, width) and the weights (B, heads, T, L), or None
        for the weights with ``return_weights=False`` (the fused kernel, for training).
        """
        context = x if context is None else context
        batch, length, width = x.shape
        groups, head_dim = self.key_value_heads, width // self.num_heads
        # The query heads that share a key/value head are one longer sequence of queries for it: each query
        # row attends on its own, so stacking them changes nothing, and one attention call serves the group.
        # q: (B, T, groups, heads per group, d) -> (B, groups, T * heads per group, d); a view with one group.
        q = self.to_q(x).view(batch, length, groups, -1, head_dim).transpose(1, 2).reshape(batch, groups, -1, head_dim)
        # Keys and values in one matrix product (wider, so faster on a CPU than two): (2, B, groups, L, d)
        keys_values = F.linear(context, torch.cat([self.to_k.weight, self.to_v.weight]))
        k, v = keys_values.view(batch, -1, 2, groups, head_dim).permute(2, 0, 3, 1, 4)
        if return_weights:
            out, weights = scaled_dot_product_attention(q, k, v)
            # (B, groups, T * heads per group, L) -> (B, heads, T, L), head h in group h // (heads per group)
            weights = weights.view(batch, groups, length, -1, weights.shape[-1]).transpose(2, 3)
            weights = weights.reshape(batch, self.num_heads, length, -1)
        else:
            out, weights = F.scaled_dot_product_attention(q, k, v), None
        # back to (B, T, heads * d), the heads concatenated; a view with one group
        out = out.view(batch, groups, length, -1, head_dim).transpose(1, 2).reshape(batch, length, width)
        return self.to_out(out), weights


class AttentionBlock(nn.Module):
    """A residual attention layer on a U-Net feature map: h + Attention(GroupNorm(h), context).

    The feature map (B, C, T) is read as T tokens of width C, one per time step.
    Normalising before attention and adding the result back (the pre-norm
    residual form used by Ho et al. 2020's U-Net) keeps the block close to the
    identity at the start of training, so it can be inserted anywhere.
    """

    def __init__(self, channels: int, context_dim: int | None = None, num_heads: int = 4, groups: int = 8,
                 key_value_heads: int | None = None):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attention = MultiHeadAttention(channels, context_dim, num_heads, key_value_heads)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None,
                return_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h: (B, C, T). Returns the new feature map (B, C, T) and the weights (B, heads, T, L) or None."""
        # (B, T, C), laid out as such once: each projection would otherwise copy (and keep) its own.
        tokens = self.norm(h).transpose(1, 2).contiguous()
        out, weights = self.attention(tokens, context, return_weights)
        return h + out.transpose(1, 2), weights


class CrossAttention(AttentionBlock):
    """Queries from the signal, keys and values from the image tokens (arXiv 2509.00787)."""

    def __init__(self, channels: int, context_dim: int, num_heads: int = 4, groups: int = 8,
                 key_value_heads: int | None = None):
        super().__init__(channels, context_dim, num_heads, groups, key_value_heads)

    def forward(self, h: torch.Tensor, context: torch.Tensor,
                return_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h: (B, C, T); context: image tokens (B, L, context_dim). Weights: (B, heads, T, L)."""
        return super().forward(h, context, return_weights)


class SelfAttention(AttentionBlock):
    """Every time step attends to every other time step of the same signal."""

    def __init__(self, channels: int, num_heads: int = 4, groups: int = 8, key_value_heads: int | None = None):
        super().__init__(channels, None, num_heads, groups, key_value_heads)

    def forward(self, h: torch.Tensor, return_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h: (B, C, T). Weights: (B, heads, T, T)."""
        return super().forward(h, None, return_weights)
