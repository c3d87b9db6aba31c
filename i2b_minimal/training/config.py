"""What defines a training run: :class:`TrainConfig`, one field per setting, each said once.

Every field carries its help text, and its valid choices where it has them, in
its ``metadata``. The ``i2b train`` options are generated from it
(``app/cli.py``), :meth:`TrainConfig.__post_init__` checks the choices for
Python callers too, and the fields marked ``fixed`` are those a resumed run must
share with its checkpoint (``SAME_ON_RESUME``). The U-Net's architecture fields have ``UNet1D``'s
names and defaults (read from ``UNet1DConfig``) and reach it as keywords
(:meth:`TrainConfig.unet_kwargs`), so the exported model's ``config.json``
records them.

The choices come from where they are defined (``unet.CONDITIONING_MODES``,
``diffusion.BETA_SCHEDULES`` ...), which imports torch; ``app/cli.py`` therefore
builds the ``train`` options only when that command is parsed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from i2b_minimal import runtime
from i2b_minimal.datasets.brain_dataset import TRIALS
from i2b_minimal.method import diffusion, unet

from .bounds import Bounds, check_setting, whole
from .optimizer import LR_SCHEDULES

MODALITIES = ("eeg", "meg")  # the THINGS-EEG2 and THINGS-MEG layouts (datasets/loaders.py)
_UNET_DEFAULTS = {f.name: f.default for f in dataclasses.fields(unet.UNet1DConfig)}


def _setting(default, help: str, choices: tuple | None = None, fixed: bool = False, network: bool = False,
             factory=None, bounds: Bounds | None = None, aliases: tuple[str, ...] = ()):
    """A TrainConfig field: its default and its metadata (help, choices, valid range, fixed on resume, a UNet1D
    keyword, older option names that still work). The valid range is appended to the help, so
    ``i2b train --help`` states it too."""
    if bounds is not None:
        help = f"{help}; {bounds}"
    metadata = {"help": help, "choices": choices, "fixed": fixed or network, "network": network, "bounds": bounds,
                "aliases": aliases}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _network(name: str, help: str, choices: tuple | None = None, bounds: Bounds | None = None):
    """A field passed to UNet1D under its own name, with UNet1D's default."""
    return _setting(_UNET_DEFAULTS[name], help, choices, network=True, bounds=bounds)


def _default_data_root() -> str:
    return str(runtime.data_dir() / "synthetic-eeg-small")


@dataclass
class TrainConfig:
    """Everything that defines a run. Saved in every checkpoint and beside the exported model."""

    data_root: str = _setting(None, "dataset root (default: <data dir>/synthetic-eeg-small)",
                              factory=_default_data_root)
    modality: str = _setting("eeg", "THINGS-EEG2 or THINGS-MEG layout", MODALITIES, fixed=True)
    subjects: tuple[int, ...] = _setting(
        (1,), "subject numbers, e.g. 1 or 1-10; several train one network with a learned subject embedding "
              "(method/subjects.py)", fixed=True, bounds=whole(1), aliases=("--subject",))
    encoder: str = _setting("tiny", 'CLIP image encoder: "tiny" (bundled), a hub id or a folder', fixed=True)
    # -- the U-Net (method/unet.py)
    conditioning: str = _network("conditioning", "how the image enters the U-Net", unet.CONDITIONING_MODES)
    base_channels: int = _network("base_channels", "U-Net width: channels at full time resolution", bounds=whole(1))
    channel_mults: tuple[int, ...] = _network(
        "channel_mults", "width of each U-Net level in multiples of --base-channels, e.g. 1,2,2; time halves "
                         "between levels", bounds=whole(1))
    layers_per_level: int = _network("layers_per_level", "residual blocks per U-Net level", bounds=whole(1))
    attention_levels: tuple[int, ...] | None = _network(
        "attention_levels", "U-Net levels with attention, e.g. 1,2 (default: every level below full resolution)",
        bounds=whole(0))
    self_attention: bool = _network("self_attention", "self-attention over time where there is attention")
    num_heads: int = _network("num_heads", "attention heads", bounds=whole(1))
    key_value_heads: int | None = _network(
        "key_value_heads", "key/value heads, each shared by a group of attention heads: 1 is multi-query attention "
                           "(faster, method/attention.py; default: one per head)", bounds=whole(1))
    groups: int = _network("groups", "GroupNorm groups", bounds=whole(1))
    dropout: float = _network("dropout", "dropout in the residual blocks",
                                    bounds=Bounds(0, 1, high_open=True))
    # -- the data and the optimisation
    # Single trials: the model then generates what a trial looks like, noise and all (its samples' dispersion about
    # their mean was 1.06-1.28 of the real trials' on the validation split, against 0.28-0.50 for averages of 4),
    # and its conditional mean estimates the same E[x_0 | image] (benchmarks/results/quality.md, "recipe").
    trials: str = _setting("single", "average the repetitions or draw single trials", TRIALS, fixed=True)
    hold_out_validation: bool = _setting(
        False, "train on the training images outside the validation concepts of datasets/splits.py only, so that "
               "settings can be chosen on the held-out ones (never on the test split)", fixed=True)
    steps: int = _setting(2000, "optimiser steps", bounds=whole(1))
    batch_size: int = _setting(64, "global batch of one optimiser step, over all processes and micro-batches",
                               bounds=whole(1))
    lr: float = _setting(5e-4, "peak learning rate of AdamW", bounds=Bounds(0, low_open=True))
    lr_schedule: str = _setting("cosine", "after the warm-up: cosine (to 0 at the last step) or constant",
                                LR_SCHEDULES)
    warmup_steps: int = _setting(100, "linear learning-rate warm-up steps", bounds=whole(0, "0: none"))
    weight_decay: float = _setting(0.01, "AdamW weight decay", bounds=Bounds(0))
    grad_clip: float = _setting(1.0, "gradient-norm clipping", bounds=Bounds(0, low_open=True))
    ema_decay: float = _setting(0.999, "EMA decay of the weights used for sampling",
                                bounds=Bounds(0, 1, high_open=True, meaning="0: the raw weights"))
    cond_drop_prob: float = _setting(0.1, "probability of dropping the image (classifier-free guidance)",
                                    bounds=Bounds(0, 1))
    # -- the diffusion (method/diffusion.py)
    # 0.5: chosen on the validation split (benchmarks/quality.py --parts recipe), where it raised the conditional
    # mean's correlation over uniform t with either kind of target.
    high_noise_fraction: float = _setting(
        0.5, "share of each batch whose step t is drawn from the top tenth of the T steps instead of all of them "
             "(method/timesteps.py); 0: Ho et al.'s uniform t", bounds=Bounds(0, 1, high_open=True))
    num_train_timesteps: int = _setting(1000, "diffusion steps T", fixed=True, bounds=whole(1))
    beta_schedule: str = _setting("linear", "noise schedule", diffusion.BETA_SCHEDULES, fixed=True)
    # v (Salimans & Ho 2022), not epsilon: with a linear schedule an epsilon network's error is multiplied by
    # 1/sqrt(alpha_bar_T) ~ 160 when x_0 is recovered at the noisiest step, which short runs cannot afford.
    prediction_type: str = _setting("v_prediction", "what the network predicts", diffusion.PREDICTION_TYPES,
                                    fixed=True)
    # -- the run
    gradient_accumulation_steps: int = _setting(1, "micro-batches per optimiser step, for big batches on small GPUs",
                                                   bounds=whole(1))
    checkpoint_every: int = _setting(250, "steps between checkpoints", bounds=whole(
        0, "0: no checkpoints, and the run cannot be resumed"))
    keep_checkpoints: int = _setting(2, "how many of the newest checkpoints to keep; older ones are deleted as "
                                        "newer ones are written", bounds=whole(0, "0: keep every checkpoint"))
    output_dir: str = _setting("runs/default", "run folder: checkpoints/ and the exported model/")
    seed: int = _setting(0, "random seed", fixed=True, bounds=whole(0))
    device: str | None = _setting(None, "cuda, mps or cpu (default: CUDA, then MPS, then CPU)")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):  # read back from JSON
                setattr(self, field.name, value := tuple(value))
            choices, bounds = field.metadata["choices"], field.metadata["bounds"]
            if choices is not None and value not in choices:
                raise ValueError(f"{field.name}={value!r} is not one of {choices}")
            if bounds is not None and value is not None:
                check_setting(field.name, value, bounds)
        if isinstance(self.subjects, int):  # --subjects 3, or a subject number from Python
            self.subjects = (self.subjects,)
        if not self.subjects or len(set(self.subjects)) != len(self.subjects):
            raise ValueError(f"subjects must name each subject once, got {self.subjects!r}")
        for field in ("data_root", "output_dir", "encoder"):  # "" would mean the current folder, or no encoder
            if not str(getattr(self, field)).strip():
                raise ValueError(f"--{field.replace('_', '-')} ({field}) must not be empty")
        # The architecture's own checks (widths divisible by groups and heads, attention levels that exist), now
        # rather than after the data is read; the data's n_channels and cond_dim do not enter them.
        unet.UNet1DConfig(n_channels=1, cond_dim=1, **self.unet_kwargs())

    def unet_kwargs(self) -> dict:
        """The U-Net's keywords (all but the data's n_channels and cond_dim)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["network"]}

    def fast_mode(self) -> TrainConfig:
        """A copy shrunk for ``I2B_FAST=1``: a narrow model and a few dozen steps."""
        return dataclasses.replace(self, base_channels=min(self.base_channels, 16), steps=min(self.steps, 60),
                                   batch_size=min(self.batch_size, 16), warmup_steps=min(self.warmup_steps, 5),
                                   checkpoint_every=min(self.checkpoint_every, 30))


# The fields a resumed run must share with its checkpoint: they fix the data, the network and its targets.
SAME_ON_RESUME = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["fixed"])
