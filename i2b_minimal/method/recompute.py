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
        ctx.save_for_backward(h, norm_weight, norm_bias, conv_weight)
        ctx.groups, ctx.eps, ctx.padding = groups, eps, padding
        return F.conv1d(F.silu(F.group_norm(h, groups, norm_weight, norm_bias, eps)), conv_weight, conv_bias,
                        padding=padding)

    @staticmethod
    def backward(ctx, grad_out):
        h, norm_weight, norm_bias, conv_weight = ctx.saved_tensors
        with torch.enable_grad():  # rebuild the activation, with its own small graph back to h and the norm
            leaves = [tensor.detach().requires_grad_() for tensor in (h, norm_weight, norm_bias)]
            activation = F.silu(F.group_norm(leaves[0], ctx.groups, leaves[1], leaves[2], ctx.eps))
        grad_activation = torch.nn.grad.conv1d_input(activation.shape, conv_weight, grad_out, padding=ctx.padding)
        grad_conv_weight = torch.nn.grad.conv1d_weight(activation.detach(), conv_weight.shape, grad_out,
                                                       padding=ctx.padding)
        grad_h, grad_norm_weight, grad_norm_bias = torch.autograd.grad(activation, leaves, grad_activation)
        return (grad_h, grad_norm_weight, grad_norm_bias, None, None, grad_conv_weight, grad_out.sum(dim=(0, 2)),
                None)
