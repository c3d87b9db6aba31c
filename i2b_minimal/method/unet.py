"""The denoiser: a 1D U-Net over time that listens to the image.

The network takes a noisy signal x_t (B, sensors, time), the diffusion step t
and an image condition, and predicts the noise in x_t (Ho et al. 2020, eq. 14).
The sensors (17 EEG electrodes, 271 MEG magnetometers) are the input channels;
convolutions run along time. It is the U-Net of Ho et al. 2020 (App. B) in one
dimension: residual blocks with GroupNorm, each told the step t through a
sinusoidal embedding (Vaswani et al. 2017, Sec. 3.5); an encoder that halves the
time resolution at every level, a bottleneck, and a decoder that doubles it
again, with skip connections between equal levels; attention only below full
resolution, where the sequences are short.

The default layout, four levels of 64, 64, 128 and 128 channels (EEG: 100 -> 52
-> 26 -> 13 samples), keeps most weights where the signal is short: a weight
costs work in proportion to the time steps it is applied to, so the same
parameter count trains faster than with wide levels at full resolution
(``benchmarks/results/unet_speed.md``).

:class:`ImageCondition` holds the ablation of arXiv 2509.00787, how the image
enters: ``"cross_attention"`` (the paper's method), ``"concat"``, ``"add"`` or
``"none"``. ``cond=None`` means "no image": a learned null embedding takes its
place, the unconditional model of classifier-free guidance (Ho & Salimans 2022);
:meth:`UNet1D.null_condition` gives the same null in the shape of a real
condition, for condition dropout and for batched guidance.

Any length works: the input is zero-padded at the end to a multiple of
2**(levels - 1) (100 EEG samples -> 104, 281 MEG samples -> 288) and the output
is cropped back, so the padded tail is never scored by the loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .attention import CrossAttention, SelfAttention
from .conditioning import CONDITIONING_MODES, ImageCondition
from .recompute import norm_silu_conv
from .subjects import SubjectEmbedding


@dataclass(frozen=True)
class UNet1DConfig:
    """Everything needed to rebuild a :class:`UNet1D`; saved as config.json by ``save_pretrained``."""

    n_channels: int
    cond_dim: int | None = None
    conditioning: str = "cross_attention"
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 1, 2, 2)
    layers_per_level: int = 2
    attention_levels: tuple[int, ...] | None = None  # None: every level below full resolution
    # Self-attention over time at the attention levels. Off by default: the four levels' convolutions already
    # reach 337 samples around each output sample (161 with three levels), more than a 100-sample EEG epoch.
    self_attention: bool = False
    num_heads: int = 4
    # Key/value heads, each shared by num_heads // key_value_heads query heads (attention.py). None: one per
    # head, plain multi-head attention. 1 (multi-query, Shazeer 2019) trains faster but scored lower on the
    # validation split in the quickstart recipe (benchmarks/results/unet_speed.md), so it is not the default.
    key_value_heads: int | None = None
    groups: int = 8
    dropout: float = 0.0
    # Subjects sharing the network (subjects.py): 0 for a model of one subject, without a subject embedding.
    n_subjects: int = 0

    def __post_init__(self):
        # JSON turns tuples into lists; keep the config hashable and comparable.
        object.__setattr__(self, "channel_mults", tuple(self.channel_mults))
        levels = range(1, len(self.channel_mults)) if self.attention_levels is None else self.attention_levels
        object.__setattr__(self, "attention_levels", tuple(levels))
        if self.key_value_heads is None:  # also what a config.json from before the field existed means
            object.__setattr__(self, "key_value_heads", self.num_heads)
        if self.conditioning not in CONDITIONING_MODES:
            raise ValueError(f"unknown conditioning {self.conditioning!r}; choose one of {CONDITIONING_MODES}")
        if self.n_subjects == 1 or self.n_subjects < 0:
            raise ValueError(f"n_subjects must be 0 (one subject) or at least 2, got {self.n_subjects}")
        if self.n_channels < 1:
            raise ValueError(f"n_channels must be positive, got {self.n_channels}")
        if self.conditioning != "none" and not (isinstance(self.cond_dim, int) and self.cond_dim > 0):
            raise ValueError(
                f"conditioning={self.conditioning!r} needs cond_dim, the width of the image features "
                f"(e.g. ImageEncoder.token_dim), got {self.cond_dim!r}; or use conditioning='none'"
            )
        if any(w % self.groups or w % self.num_heads for w in self.widths):
            raise ValueError(f"channel widths {self.widths} must be divisible by groups={self.groups} and "
                             f"num_heads={self.num_heads}")
        if self.key_value_heads < 1 or self.num_heads % self.key_value_heads:
            raise ValueError(f"key_value_heads={self.key_value_heads} must divide num_heads={self.num_heads}")
        if any(not 0 <= level < len(self.widths) for level in self.attention_levels):
            raise ValueError(f"attention_levels {self.attention_levels} must lie in 0..{len(self.widths) - 1}")

    @property
    def widths(self) -> list[int]:
        """Channels at each level, full time resolution first."""
        return [self.base_channels * m for m in self.channel_mults]

    @property
    def time_dim(self) -> int:
        """Width of the step embedding (4 x base_channels, as in Ho et al. 2020)."""
        return 4 * self.base_channels


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the step t (Vaswani et al. 2017, Sec. 3.5; Ho et al. 2020, App. B): (B,) -> (B, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the step embedding, twice, around a skip (Ho et al. 2020, App. B)."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size=3, padding=1)
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """h: (B, in_channels, T); temb: the (step + image) embedding (B, time_dim). Returns (B, out_channels, T)."""
        x = norm_silu_conv(h, self.norm1, self.conv1)  # conv1(SiLU(norm1(h)))
        x = x + self.time_proj(F.silu(temb))[:, :, None]  # one bias per channel, the same at every time step
        x = norm_silu_conv(x, self.norm2, self.conv2, self.dropout)  # conv2(dropout(SiLU(norm2(x))))
        return self.skip(h) + x


class Stage(nn.Module):
    """One U-Net level: residual blocks, then (at low resolution) self- and cross-attention."""

    def __init__(self, name: str, in_channels: int, out_channels: int, n_blocks: int, cfg: UNet1DConfig,
                 with_attention: bool):
        super().__init__()
        self.name = name  # the key of its cross-attention weights in ``return_attention``'s dict
        self.blocks = nn.ModuleList(
            ResBlock(in_channels if i == 0 else out_channels, out_channels, cfg.time_dim, cfg.groups, cfg.dropout)
            for i in range(n_blocks)
        )
        use_self = with_attention and cfg.self_attention
        use_cross = with_attention and cfg.conditioning == "cross_attention"
        self.self_attention = (SelfAttention(out_channels, cfg.num_heads, cfg.groups, cfg.key_value_heads)
                               if use_self else None)
        self.cross_attention = (CrossAttention(out_channels, cfg.widths[-1], cfg.num_heads, cfg.groups,
                                               cfg.key_value_heads) if use_cross else None)

    def forward(self, h, temb, context, attention_maps: dict | None):
        for block in self.blocks:
            h = block(h, temb)
        if self.self_attention is not None:
            h, _ = self.self_attention(h, return_weights=False)
        if self.cross_attention is not None:
            h, weights = self.cross_attention(h, context, return_weights=attention_maps is not None)
            if attention_maps is not None:
                attention_maps[self.name] = weights
        return h


class Upsample(nn.Module):
    """Double the time resolution: nearest-neighbour repeat, then a 3-tap convolution to smooth it."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size=3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(h, scale_factor=2, mode="nearest"))


class UNet1D(nn.Module, PyTorchModelHubMixin, library_name="i2b-minimal", tags=["eeg", "meg", "diffusion"]):
    """Predicts the noise in a (B, n_channels, T) signal, conditioned on an image.

    ``UNet1D(17, cond_dim=128, conditioning="cross_attention", base_channels=32)``:
    the keywords are the fields of :class:`UNet1DConfig`, with its defaults.
    ``model(x_t, t, cond)`` with x_t (B, C, T), t (B,) int64 steps and cond
    (B, L, D) tokens, (B, D) embedding, or None (the null condition) returns
    (B, C, T). A model of several subjects (``n_subjects``) also takes
    ``subject``, (B,) rows of its subject table, or None for the average
    subject. ``return_attention=True`` also returns the cross-attention weights
    as a dict of (B, heads, T_level, L) tensors, one per attention layer, where
    T_level is the padded length divided by 2**level.
    """

    def __init__(self, n_channels: int, **options):
        super().__init__()
        self.config = cfg = UNet1DConfig(n_channels, **options)
        self._hub_mixin_config = cfg  # config.json records every field, defaults included
        widths, levels, attend = cfg.widths, range(len(cfg.widths)), set(cfg.attention_levels)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.base_channels, cfg.time_dim), nn.SiLU(),
                                      nn.Linear(cfg.time_dim, cfg.time_dim))
        self.condition = ImageCondition(cfg)
        self.subjects = SubjectEmbedding(cfg.n_subjects, cfg.time_dim) if cfg.n_subjects else None
        extra = cfg.base_channels if cfg.conditioning == "concat" else 0  # the image's input channels
        self.input_conv = nn.Conv1d(n_channels + extra, widths[0], kernel_size=3, padding=1)
        self.down = nn.ModuleList(Stage(f"down{i}", widths[max(i - 1, 0)], widths[i], cfg.layers_per_level, cfg,
                                        i in attend) for i in levels)
        self.downsample = nn.ModuleList(
            nn.Conv1d(w, w, kernel_size=3, stride=2, padding=1) if i < len(widths) - 1 else nn.Identity()
            for i, w in enumerate(widths)
        )
        self.mid = Stage("mid", widths[-1], widths[-1], 2, cfg, with_attention=True)
        # Decoder, deepest level first: upsample (except at the bottom), concatenate the skip, residual blocks.
        self.upsample = nn.ModuleList(
            Upsample(widths[i + 1]) if i < len(widths) - 1 else nn.Identity() for i in reversed(levels)
        )
        self.up = nn.ModuleList(Stage(f"up{i}", widths[min(i + 1, len(widths) - 1)] + widths[i], widths[i],
                                      cfg.layers_per_level, cfg, i in attend) for i in reversed(levels))
        self.output = nn.Sequential(nn.GroupNorm(cfg.groups, widths[0]), nn.SiLU(),
                                    nn.Conv1d(widths[0], n_channels, kernel_size=3, padding=1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before the conditioning had a module of its own (the bundled model's among them)
        # keep its three parameters at the top level: read them into ``condition``.
        for key in [k for k in state_dict if k.startswith(prefix) and
                    k[len(prefix):].split(".")[0] in ("null_cond", "cond_norm", "cond_proj")]:
            state_dict[f"{prefix}condition.{key[len(prefix):]}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def null_condition(self, like: torch.Tensor) -> torch.Tensor:
        """The null condition in the shape of ``like`` ((B, D) or (B, L, D)): what ``cond=None`` means.

        Every token is the learned null embedding, so attention over it is uniform
        and returns that one embedding's value, as ``cond=None`` (one null token) does.
        """
        if self.config.conditioning == "none":
            return like
        return self.condition.null_cond.to(like.dtype).expand_as(like)

    def _check_inputs(self, x, t, cond, subject):
        cfg = self.config
        if x.dim() != 3 or x.shape[1] != cfg.n_channels:
            raise ValueError(f"expected x of shape (batch, {cfg.n_channels}, time), got {tuple(x.shape)}; "
                             f"this model was built for n_channels={cfg.n_channels}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"expected t of shape ({x.shape[0]},), one step per signal, got {tuple(t.shape)}")
        if subject is not None and subject.shape != (x.shape[0],):
            raise ValueError(f"expected subject of shape ({x.shape[0]},), one row per signal, got {tuple(subject.shape)}")
        if cond is None or cfg.conditioning == "none":
            return
        if cond.dim() not in (2, 3) or cond.shape[0] != x.shape[0] or cond.shape[-1] != cfg.cond_dim:
            raise ValueError(f"expected cond of shape ({x.shape[0]}, {cfg.cond_dim}) or ({x.shape[0]}, tokens, "
                             f"{cfg.cond_dim}), got {tuple(cond.shape)}; cond_dim={cfg.cond_dim} must match the "
                             "image encoder's width")

    def forward(self, x: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None,
                subject: torch.Tensor | None = None, return_attention: bool = False):
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        self._check_inputs(x, t, cond, subject)
        length = x.shape[-1]
        x = F.pad(x, (0, -length % 2 ** (len(self.config.channel_mults) - 1)))
        temb = self.time_mlp(timestep_embedding(t, self.config.base_channels).to(x.dtype))
        if self.subjects is not None:  # whose brain: added to the step embedding, as a class label (subjects.py)
            temb = temb + self.subjects(subject, x.shape[0]).to(temb.dtype)
        elif subject is not None:
            raise ValueError("this model was trained on one subject and has no subject embedding; pass subject=None")
        x, temb, context = self.condition(x, temb, cond)

        maps = {} if return_attention else None
        h = self.input_conv(x)
        skips = []
        for stage, downsample in zip(self.down, self.downsample):
            h = stage(h, temb, context, maps)
            skips.append(h)
            h = downsample(h)
        h = self.mid(h, temb, context, maps)
        for stage, upsample in zip(self.up, self.upsample):
            h = upsample(h)
            h = stage(torch.cat([h, skips.pop()], dim=1), temb, context, maps)
        out = self.output(h)[..., :length]
        return (out, maps) if return_attention else out

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def summary(self) -> str:
        """One line per part: where the parameters are."""
        parts = {"time embedding": ("time_mlp.",), "condition": ("condition.",), "subjects": ("subjects.",),
                 "encoder": ("input_conv.", "down.", "downsample."), "bottleneck": ("mid.",),
                 "decoder": ("upsample.", "up."), "output": ("output.",)}
        lines = [f"UNet1D({', '.join(f'{k}={v}' for k, v in asdict(self.config).items())})"]
        for part, prefixes in parts.items():
            count = sum(p.numel() for name, p in self.named_parameters() if name.startswith(prefixes))
            lines.append(f"  {part:<15}{count:>12,}")
        lines.append(f"  {'total':<15}{self.num_parameters():>12,}")
        return "\n".join(lines)

    def extra_repr(self) -> str:
        return f"conditioning={self.config.conditioning!r}, parameters={self.num_parameters():,}"
