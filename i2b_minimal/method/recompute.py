"""Norm -> SiLU -> convolution, the residual block's unit, stored lean for the backward pass.

Autograd keeps three feature maps of ``conv(SiLU(GroupNorm(h)))`` for the
backward pass: GroupNorm's input, SiLU's input and the convolution's input. The
last two cost no matrix products to rebuild from the first, so
:class:`NormSiLUConv` keeps only ``h`` and recomputes them when the gradient
arrives (activation recomputation, Chen et al. 2016, "Training deep nets with
sublinear memory cost"). The residual blocks then keep a third of the memory,
for one more GroupNorm and SiLU each in the backward pass, which is cheap next to
the convolutions. The function and its gradients are exactly those of the plain
composition (``tests/test_unet.py`` checks them against it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def norm_silu_conv(h: torch.Tensor, norm: nn.GroupNorm, conv: nn.Conv1d,
                   dropout: nn.Dropout | None = None) -> torch.Tensor:
    """``conv(dropout(SiLU(norm(h))))``, keeping only ``h`` for the backward pass where that applies.

    The plain composition runs when no gradient is needed (sampling), when dropout
    is active (its random mask would have to be kept too) and under autocast (the
    recomputation below is written for one dtype).
    """
    dropping = dropout is not None and dropout.training and dropout.p > 0
    if not torch.is_grad_enabled() or dropping or torch.is_autocast_enabled(h.device.type):
        return conv((dropout or nn.Identity())(F.silu(norm(h))))
    return NormSiLUConv.apply(h, norm.weight, norm.bias, norm.num_groups, norm.eps, conv.weight, conv.bias,
                              conv.padding[0])


class NormSiLUConv(torch.autograd.Function):
    """conv1d(SiLU(group_norm(h))) whose backward pass rebuilds SiLU(group_norm(h)) from h."""

    @staticmethod
    def forward(ctx, h, norm_weight, norm_bias, groups, eps, conv_weight, conv_bias, padding):
        h = h.contiguous()  # GroupNorm's kernels want it so (a copy only after a transpose)
        ctx.save_for_backward(h, norm_weight, norm_bias, conv_weight)
        ctx.groups, ctx.eps, ctx.padding = groups, eps, padding
        return F.conv1d(F.silu(F.group_norm(h, groups, norm_weight, norm_bias, eps)), conv_weight, conv_bias,
                        padding=padding)

    @staticmethod
    def backward(ctx, grad_out):
        h, norm_weight, norm_bias, conv_weight = ctx.saved_tensors
        batch, channels, length = h.shape
        # Rebuild the activation, keeping GroupNorm's statistics for its own backward pass. The three backward
        # kernels below are the ones autograd itself calls for these layers, called directly: a nested
        # autograd.grad over a rebuilt graph cost 2-3% of a training step in bookkeeping alone.
        normed, mean, rstd = torch.ops.aten.native_group_norm(h, norm_weight, norm_bias, batch, channels, length,
                                                               ctx.groups, ctx.eps)
        # The convolution's three gradients in one call: oneDNN then lays out grad_out once for all of them
        # (separate conv1d_input / conv1d_weight calls cost 3-7% of a training step).
        grad_activation, grad_conv_weight, grad_conv_bias = torch.ops.aten.convolution_backward(
            grad_out, F.silu(normed), conv_weight, [conv_weight.shape[0]], [1], [ctx.padding], [1], False, [0], 1,
            [True, True, True])
        grad_normed = torch.ops.aten.silu_backward(grad_activation, normed)
        grad_h, grad_norm_weight, grad_norm_bias = torch.ops.aten.native_group_norm_backward(
            grad_normed, h, mean, rstd, norm_weight, batch, channels, length, ctx.groups, [True, True, True])
        return grad_h, grad_norm_weight, grad_norm_bias, None, None, grad_conv_weight, grad_conv_bias, None
