"""The conditioning ablation of arXiv 2509.00787: cross-attention against concatenation, addition and no image.

The U-Net (``unet.py``) hands the step embedding, its input and the image to
:class:`ImageCondition` and reads back what each mode changed, so one class
holds both the layers and the arithmetic of every mode. ``book/theory/conditioning.md`` derives each mode and what it can express; the
quality benchmark (``benchmarks/quality.py``) trains one model per mode.
"""

from __future__ import annotations

import torch
from torch import nn

CONDITIONING_MODES = ("cross_attention", "concat", "add", "none")


class ImageCondition(nn.Module):
    """How the picture enters the U-Net: the four modes of arXiv 2509.00787's ablation, in one place.

    * ``"cross_attention"``: the image tokens (B, L, D), projected to the deepest
      width, become the keys and values that every attention layer reads (the paper's method);
    * ``"concat"``: the image embedding (B, D), projected to ``base_channels`` and broadcast
      over time, is concatenated to the input channels;
    * ``"add"``: the image embedding, projected to the time-embedding width, is added
      to the step embedding, so every residual block sees it;
    * ``"none"``: no image (``cond`` is ignored), the lower bound of the ablation.

    ``concat`` and ``add`` mean-pool a token sequence (B, L, D) to (B, D).
    """

    def __init__(self, cfg):
        """``cfg``: the U-Net's :class:`~i2b_minimal.method.unet.UNet1DConfig`."""
        super().__init__()
        self.mode = cfg.conditioning
        if self.mode == "none":
            return
        # Learned "no image" embedding (classifier-free guidance, Ho & Salimans 2022, Sec. 3.2).
        self.null_cond = nn.Parameter(torch.randn(cfg.cond_dim))
        self.cond_norm = nn.LayerNorm(cfg.cond_dim)  # CLIP features have a few very large dimensions
        # One projection of the image features, shared by all layers (cheaper than every attention layer
        # projecting, say, 257 x 1024 CLIP tokens itself).
        width = {"cross_attention": cfg.widths[-1], "concat": cfg.base_channels, "add": cfg.time_dim}[self.mode]
        self.cond_proj = nn.Linear(cfg.cond_dim, width)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, cond: torch.Tensor | None):
        """Returns (x, temb, context): the input and step embedding with the image in them, and the image
        tokens for cross-attention (None in the other modes)."""
        if self.mode == "none":
            return x, temb, None
        if cond is None:
            cond = self.null_cond.to(x.dtype).expand(x.shape[0], 1, -1)
        if self.mode == "cross_attention":
            return x, temb, self.cond_proj(self.cond_norm(cond if cond.dim() == 3 else cond[:, None]))
        pooled = self.cond_proj(self.cond_norm(cond.mean(dim=1) if cond.dim() == 3 else cond))
        if self.mode == "add":
            return x, temb + pooled, None
        # concat: the same image vector at every time step, as extra input channels
        return torch.cat([x, pooled[:, :, None].expand(-1, -1, x.shape[-1])], dim=1), temb, None
