"""The training loop: AdamW with warm-up, an EMA of the weights, crash-safe checkpoints, resume, many processes.

One step draws a batch of (image features, brain signal) pairs, noises the
signals and teaches the U-Net to predict the noise (``diffusion.training_loss``,
Ho et al. 2020, Algorithm 1), replacing the image by the null condition now and
then so that the same network also learns the unconditional model of
classifier-free guidance (Ho & Salimans 2022). Around that step:

* **Signals in model units.** DDPM assumes data of unit scale, so that x_T is
  close to N(0, I) (Ho et al. 2020 scale images to [-1, 1]). THINGS-EEG2 is
  whitened, roughly unit variance; THINGS-MEG is baseline z-scored per epoch. Both get the
  same treatment: each channel is standardised with the mean and standard
  deviation of the training targets (after averaging repetitions, when those are
  the targets). The statistics go into every checkpoint and the exported model,
  and ``export.to_data_units`` maps samples back to the data's units.
* **EMA.** Sampling uses an exponential moving average of the weights; Ho et al.
  2020 used a decay of 0.9999 over 800k steps. Our runs last thousands of steps,
  so the default is 0.999 (roughly the mean of the last 1000 steps), ramped up as
  min(decay, (1 + n) / (10 + n)) so that the random initial weights are forgotten
  quickly (the ``num_updates`` rule of TensorFlow's ExponentialMovingAverage).
* **Reproducible batches.** Step n draws its global batch from a generator seeded
  with (seed, n), and shard k of that batch draws its noise from (seed, n, k),
  never from a running stream. So a resumed run continues exactly where it
  stopped, and the result depends on how the batch is cut into shards, not on
  which process (or which gradient-accumulation micro-batch) computes a shard.
* **Many processes** come from Hugging Face Accelerate (``accelerate launch`` or
  ``torchrun``): it places the model, wraps it in DistributedDataParallel,
  averages the gradients, and says which process writes the files.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, export
from i2b_minimal.method import diffusion
from i2b_minimal import runtime
from i2b_minimal.method.hardware import autocast, best_device
from .export import load_trained, to_data_units  # noqa: F401 -- read back what train() writes

MODEL_DIR = "model"  # <output_dir>/model: the exported EMA model (export.py)
CHECKPOINT_DIR = "checkpoints"  # <output_dir>/checkpoints/step-XXXXXXXX (checkpoint.py)
# Config fields a resumed run must share with its checkpoint: they fix the data, the network and its targets.
SAME_ON_RESUME = ("modality", "subject", "encoder", "conditioning", "base_channels", "trials", "num_train_timesteps",
                  "beta_schedule", "prediction_type", "seed")


@dataclass
class TrainConfig:
    """Everything that defines a run. Saved in every checkpoint and beside the exported model."""

    data_root: str = dataclasses.field(default_factory=lambda: str(runtime.data_dir() / "synthetic-eeg-small"))
    modality: str = "eeg"  # "eeg" (THINGS-EEG2 layout) or "meg" (THINGS-MEG layout)
    subject: int = 1
    encoder: str = "tiny"  # clip.ImageEncoder: "tiny" (bundled), a hub id or a folder
    conditioning: str = "cross_attention"  # "cross_attention" | "concat" | "add" | "none"
    base_channels: int = 64  # U-Net width (UNet1D's default)
    trials: str = "mean"  # "mean": average the repetitions; "single": one random trial per draw
    steps: int = 2000
    batch_size: int = 64  # the global batch of one optimiser step, over all processes and micro-batches
    lr: float = 5e-4
    lr_schedule: str = "cosine"  # after the warm-up: "cosine" (to 0 at the last step) or "constant"
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_drop_prob: float = 0.1  # classifier-free guidance: probability that the image is replaced by the null
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    # v (Salimans & Ho 2022), not epsilon: with a linear schedule an epsilon network's error is multiplied by
    # 1/sqrt(alpha_bar_T) ~ 160 when x_0 is recovered at the noisiest step, which short runs cannot afford.
    prediction_type: str = "v_prediction"
    gradient_accumulation_steps: int = 1  # micro-batches per step, for big batches on small GPUs
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    output_dir: str = "runs/default"
    seed: int = 0
    device: str | None = None  # None: CUDA, then MPS, then CPU

    def fast_mode(self) -> TrainConfig:
        """A copy shrunk for ``I2B_FAST=1``: a narrow model and a few dozen steps."""
        return dataclasses.replace(self, base_channels=min(self.base_channels, 16), steps=min(self.steps, 60),
                                   batch_size=min(self.batch_size, 16), warmup_steps=min(self.warmup_steps, 5),
                                   checkpoint_every=min(self.checkpoint_every, 30))


@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path | None  # the exported EMA model (load_trained reads it); None when stopped early
    losses: list[float]  # the mean loss of every step since step 1, including those before a resume
    start_step: int  # 0, or the checkpoint step this call resumed from
    seconds: float  # wall time of this call's steps


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped without writing a checkpoint."""


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging), kept in float32."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for key, value in model.state_dict().items():
            self.shadow[key].lerp_(value.float(), weight)  # shadow += (1 - decay) (value - shadow)

    def copy_to(self, model: torch.nn.Module) -> torch.nn.Module:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})
        return model


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` at optimiser step ``step`` (from 0): linear warm-up, then constant or cosine."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))  # Loshchilov & Hutter 2017, without restarts


# ----------------------------------------------------------------------------- data


@dataclass
class TrainingData:
    dataset: object  # data.BrainDataset over the standardised signals, with the image features
    info: dict  # what sampling and resuming must know: shapes, channels, encoder, normalisation


def prepare_data(config: TrainConfig, progress: bool = True, accelerator=None) -> TrainingData:
    """Load the training split, encode its images (cached beside the data), standardise each channel."""
    from i2b_minimal.method import clip
    from i2b_minimal.datasets import loaders as data
    from i2b_minimal.datasets import features as feature_cache

    brain = data.load(config.modality, config.data_root, subject=config.subject, split="train")
    features, encoder_info = None, None
    if config.conditioning != "none":
        encoder = clip.ImageEncoder(config.encoder, progress=progress)
        with accelerator.main_process_first() if accelerator else contextlib.nullcontext():
            # One process encodes and writes the cache; the others wait, then read it.
            tokens, pooled = feature_cache.encode_dataset(encoder, brain.image_paths, Path(config.data_root) / "features",
                                                 progress=progress)
        features = tokens if config.conditioning == "cross_attention" else pooled
        encoder_info = {"name": encoder.name, "fingerprint": encoder.fingerprint, "token_dim": encoder.token_dim,
                        "embed_dim": encoder.embed_dim, "num_tokens": encoder.num_tokens}
    targets = brain.mean_over_repetitions() if config.trials == "mean" else brain.signals
    # Channel by channel, so that the float64 temporaries stay small even for the full THINGS-MEG.
    mean = np.array([targets[..., c, :].mean(dtype=np.float64) for c in range(targets.shape[-2])])
    std = np.array([targets[..., c, :].astype(np.float64).std() for c in range(targets.shape[-2])])
    if np.any(std == 0):
        raise ValueError(f"channels {[brain.ch_names[i] for i in np.flatnonzero(std == 0)]} are constant in "
                         f"{config.data_root}; drop them before training")
    scaled = (brain.signals - mean[:, None].astype(np.float32)) / std[:, None].astype(np.float32)
    dataset = data.BrainDataset(dataclasses.replace(brain, signals=scaled), features, trials=config.trials,
                                seed=config.seed)
    info = {"dataset": brain.dataset, "subject": brain.subject, "ch_type": brain.ch_type, "ch_names": brain.ch_names,
            "sfreq": brain.sfreq, "times": brain.times.tolist(), "n_channels": len(brain.ch_names),
            "n_times": len(brain.times), "n_train_images": brain.n_images, "trials": config.trials,
            "conditioning": config.conditioning, "encoder": encoder_info,
            "cond_dim": None if features is None else int(features.shape[-1]),
            "normalisation": {"mean": mean.tolist(), "std": std.tolist(),
                              "rule": "per-channel z-score of the training targets; data = model * std + mean"}}
    return TrainingData(dataset, info)


def global_batch(dataset, seed: int, step: int, batch_size: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The (cond, x0) batch of step ``step``: a pure function of (seed, step), without replacement when it fits."""
    rng = np.random.default_rng([seed, step, 0xBA7C4])
    rows = rng.choice(len(dataset), size=batch_size, replace=batch_size > len(dataset))
    items = [dataset[int(i)] for i in rows]
    cond = torch.stack([c for c, _ in items]) if dataset.features is not None else None
    return cond, torch.stack([signal for _, signal in items])


# ----------------------------------------------------------------------------- the loop


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False, stop_after: int | None = None,
          progress: bool = True) -> TrainResult:
    """Train as ``config`` says, checkpointing on the way, and export the EMA model to ``<output_dir>/model``.

    ``resume`` continues from the newest checkpoint in ``config.output_dir``;
    ``overwrite`` deletes its checkpoints and starts again. ``stop_after`` ends
    this call after that step, with a checkpoint, as a time limit would (a
    Colab session, a test); resuming later gives exactly the uninterrupted run.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from i2b_minimal.method import unet
    accelerator = Accelerator(cpu=best_device(config.device).type == "cpu")
    main, device, processes = accelerator.is_main_process, accelerator.device, accelerator.num_processes
    micro_batches = config.gradient_accumulation_steps
    if config.batch_size % (processes * micro_batches):
        raise ValueError(f"batch_size {config.batch_size} must split evenly into {processes} processes x "
                         f"{micro_batches} accumulation steps")
    output_dir = Path(config.output_dir)
    checkpoints = output_dir / CHECKPOINT_DIR
    saved, latest = None, checkpoint.latest_checkpoint(checkpoints)
    if latest is not None and resume:
        saved = checkpoint.load_checkpoint(latest)  # every file is verified before anything else happens
        _check_same_run(saved[1]["config"], config, latest)
    elif latest is not None and not overwrite:
        raise ValueError(f"{output_dir} already holds checkpoints of a run ({latest.name}); resume it "
                         "(--resume), start again (--overwrite), or choose another output directory")
    elif latest is not None:
        if main:
            shutil.rmtree(checkpoints)
        accelerator.wait_for_everyone()

    set_seed(config.seed)
    prepared = prepare_data(config, progress=progress and main, accelerator=accelerator)
    model = unet.UNet1D(n_channels=prepared.info["n_channels"], cond_dim=prepared.info["cond_dim"],
                        conditioning=config.conditioning, base_channels=config.base_channels).to(device)
    ema = EMA(model, config.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config))
    schedule = diffusion.NoiseSchedule(config.num_train_timesteps, config.beta_schedule, config.prediction_type)
    start, losses, seconds = 0, [], 0.0
    if saved is not None:
        export.check_compatible(saved[1]["info"], prepared.info, source=latest)
        ema_weights, extra, state = checkpoint.restore_training_state(saved, model, optimizer, scheduler, latest)
        ema.shadow = {k: v.to(device) for k, v in ema_weights.items()}
        # BrainDataset's single-trial draws depend on how often each image was drawn: restore those counters.
        prepared.dataset._draws[:] = extra["dataset_draws"].numpy()
        start, losses, seconds = state["step"], list(state["losses"]), state["seconds"]
        if main:
            print(f"resuming {output_dir} from step {start} ({latest})")
    ddp_model, ddp_optimizer = accelerator.prepare(model, optimizer)
    loss_model = _LossModel(ddp_model, model)

    shard_size = config.batch_size // (processes * micro_batches)
    last_step = config.steps if stop_after is None else min(stop_after, config.steps)
    bar = tqdm(total=config.steps, initial=start, unit="step", desc=f"train {config.conditioning}",
               disable=not (progress and main))
    began = time.perf_counter()
    for step in range(start + 1, last_step + 1):  # ``step`` counts optimiser steps from 1
        cond, x0 = global_batch(prepared.dataset, config.seed, step, config.batch_size)
        step_loss = 0.0
        for micro in range(micro_batches):
            # Shard k = micro * P + rank: 2 processes x 1 micro-batch compute what 1 process x 2 micro-batches does.
            k = micro * processes + accelerator.process_index
            rows = slice(k * shard_size, (k + 1) * shard_size)
            generator = torch.Generator(device).manual_seed(_seed(config.seed, step, k))
            # Gradients are averaged across processes once, after the last micro-batch.
            with accelerator.no_sync(ddp_model) if micro < micro_batches - 1 else contextlib.nullcontext():
                with autocast(device):
                    loss = diffusion.training_loss(loss_model, schedule, x0[rows].to(device),
                                                   None if cond is None else cond[rows].to(device),
                                                   cond_drop_prob=config.cond_drop_prob, generator=generator)
                shard_loss = accelerator.reduce(loss.detach().float(), reduction="mean").item()  # same on every rank
                if not math.isfinite(shard_loss):
                    raise NonFiniteLossError(
                        f"the loss became {shard_loss} at step {step}; training stopped and wrote nothing for it. "
                        f"The last good checkpoint is {checkpoint.latest_checkpoint(checkpoints) or 'none yet'}. "
                        f"Lower the learning rate (lr={config.lr}) or check the data, then resume with --resume")
                accelerator.backward(loss / micro_batches)
            step_loss += shard_loss / micro_batches
        accelerator.clip_grad_norm_(ddp_model.parameters(), config.grad_clip)
        lr = scheduler.get_last_lr()[0]
        ddp_optimizer.step()
        scheduler.step()
        ddp_optimizer.zero_grad(set_to_none=True)
        ema.update(model, step)
        losses.append(step_loss)
        bar.update()
        bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.1e}", refresh=False)
        if step % config.checkpoint_every == 0 or step == last_step:
            if main:  # the processes hold identical weights; one writes them
                state = {"config": dataclasses.asdict(config), "info": prepared.info, "losses": losses,
                         "seconds": seconds + time.perf_counter() - began}
                checkpoint.save_training_state(checkpoints, step, model, ema.shadow, optimizer, scheduler, state,
                                               {"dataset_draws": torch.from_numpy(prepared.dataset._draws.copy())},
                                               keep=config.keep_checkpoints)
            accelerator.wait_for_everyone()
    bar.close()
    elapsed = time.perf_counter() - began
    finished = last_step == config.steps
    if main and finished:
        meta = {**prepared.info, "config": dataclasses.asdict(config),
                "schedule": {"num_train_timesteps": config.num_train_timesteps,
                             "beta_schedule": config.beta_schedule, "prediction_type": config.prediction_type},
                "training": {"steps": config.steps, "seconds": round(seconds + elapsed, 1), "processes": processes,
                             "device": str(device), "final_loss": float(np.mean(losses[-50:])) if losses else None}}
        export.export_model(ema.copy_to(copy.deepcopy(model)), output_dir / MODEL_DIR, meta)
        if progress:
            print(f"exported the EMA model to {output_dir / MODEL_DIR}")
    accelerator.wait_for_everyone()
    return TrainResult(output_dir, output_dir / MODEL_DIR if finished else None, losses, start, elapsed)


class _LossModel:
    """The DDP-wrapped network for the forward pass (so gradients are averaged), the plain one for its null."""

    def __init__(self, wrapped: torch.nn.Module, plain: torch.nn.Module):
        self.wrapped, self.null_condition = wrapped, plain.null_condition

    def __call__(self, *args, **kwargs):
        return self.wrapped(*args, **kwargs)


def _seed(seed: int, step: int, shard: int) -> int:
    """A 63-bit seed per (seed, step, shard), mixed by NumPy's SeedSequence so that nearby inputs are unrelated."""
    return int(np.random.SeedSequence([seed, step, shard]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _check_same_run(saved: dict, config: TrainConfig, path: Path) -> None:
    for field in SAME_ON_RESUME:
        if saved[field] != getattr(config, field):
            raise checkpoint.CheckpointError(
                f"{path} belongs to a run with {field}={saved[field]!r}, but this run asks for "
                f"{getattr(config, field)!r}; resume with the same {field}, or train in another output directory")
