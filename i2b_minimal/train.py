"""The training loop: AdamW with warm-up, an EMA of the weights, crash-safe checkpoints, resume, many processes.

One step draws a batch of (image features, brain signal) pairs, noises the
signals and teaches the U-Net to predict the noise (``diffusion.training_loss``,
Ho et al. 2020, Algorithm 1), dropping the image now and then so that the same
network also learns the unconditional model of classifier-free guidance
(Ho & Salimans 2022). Around that step:

* **Signals in model units.** DDPM assumes data of unit scale, so that x_T is
  close to N(0, I) (Ho et al. 2020 scale images to [-1, 1]). THINGS-EEG2 is
  whitened and roughly unit variance; THINGS-MEG is in tesla (~1e-13). Both get
  the same treatment: each channel is standardised with the mean and standard
  deviation of the training targets (after averaging repetitions, when that is
  what is trained on). The statistics go into every checkpoint and the exported
  model, and :func:`to_data_units` maps samples back to the data's units.
* **EMA.** Sampling uses an exponential moving average of the weights; Ho et al.
  2020 used a decay of 0.9999 over 800k steps. Our runs are thousands of steps,
  so the default is 0.999 (an average over about the last 1000 steps), ramped up
  as min(decay, (1 + n) / (10 + n)) so that early, random weights are forgotten
  quickly (the num_updates rule of TensorFlow's ExponentialMovingAverage).
* **Reproducible batches.** Step n draws its global batch and its noise from
  generators seeded with (seed, n), not from a running stream: a resumed run
  continues exactly where it stopped, and with P processes every process builds
  the same global batch and keeps its 1/P slice, so P processes compute what one
  process would, up to the order of floating-point sums.
* **Many processes** come from Hugging Face Accelerate (``accelerate launch`` or
  ``torchrun``): it places the model, wraps it in DistributedDataParallel,
  averages gradients, and tells us which process writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, diffusion, runtime

MODEL_DIR = "model"  # <output_dir>/model: the exported EMA model
CHECKPOINT_DIR = "checkpoints"  # <output_dir>/checkpoints/step-XXXXXXXX


@dataclass
class TrainConfig:
    """Everything that defines a run. Saved in every checkpoint and beside the exported model."""

    data_root: str = "data/synthetic-eeg-small"
    modality: str = "eeg"  # "eeg" (THINGS-EEG2 layout) or "meg" (THINGS-MEG layout)
    subject: int = 1
    encoder: str = "tiny"  # clip.ImageEncoder: "tiny" (bundled), a hub id or a folder
    conditioning: str = "cross_attention"  # "cross_attention" | "concat" | "add" | "none"
    base_channels: int = 64  # U-Net width; 64 gives the default ~2-4 M parameters
    trials: str = "mean"  # "mean": average the repetitions; "single": one random trial per draw
    steps: int = 2000
    batch_size: int = 64  # the global batch, split evenly across processes
    lr: float = 5e-4
    lr_schedule: str = "cosine"  # after the warm-up: "cosine" (to 0 at the last step) or "constant"
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_drop_prob: float = 0.1  # classifier-free guidance (Ho & Salimans 2022): p(image replaced by null)
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    prediction_type: str = "epsilon"
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
    model_dir: Path  # the exported EMA model, for load_trained
    losses: list[float]  # mean loss of every step since step 1, including those before a resume
    start_step: int  # 0, or the checkpoint step this run resumed from
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
            self.shadow[key].lerp_(value.float(), weight)  # shadow += (1 - decay) * (value - shadow)

    def copy_to(self, model: torch.nn.Module) -> torch.nn.Module:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})
        return model


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` for optimiser step ``step`` (0-based): linear warm-up, then constant or cosine."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))  # Loshchilov & Hutter 2017, without restarts


# ----------------------------------------------------------------------------- data


@dataclass
class TrainingData:
    dataset: object  # data.BrainDataset over standardised signals
    info: dict  # what sampling and resuming need to know: shapes, channels, encoder, normalisation


def prepare_data(config: TrainConfig, progress: bool = True, accelerator=None) -> TrainingData:
    """Load the training split, encode its images (cached) and standardise the signals per channel."""
    from . import clip, data

    if config.trials not in ("mean", "single"):
        raise ValueError(f"trials must be 'mean' or 'single', not {config.trials!r}")
    brain = data.load(config.modality, config.data_root, subject=config.subject, split="train")
    features, encoder_info, cond_dim = None, None, None
    if config.conditioning != "none":
        encoder = clip.ImageEncoder(config.encoder, progress=progress)
        first = accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext()
        with first:  # one process encodes and writes the cache; the others then read it
            tokens, pooled = clip.encode_dataset(encoder, brain.image_paths, Path(config.data_root) / "features",
                                                 progress=progress)
        features = tokens if config.conditioning == "cross_attention" else pooled
        cond_dim = int(features.shape[-1])
        encoder_info = {"name": encoder.name, "fingerprint": encoder.fingerprint, "token_dim": encoder.token_dim,
                        "embed_dim": encoder.embed_dim, "num_tokens": encoder.num_tokens}
        del encoder
    targets = brain.mean_over_repetitions() if config.trials == "mean" else brain.signals
    axes = tuple(i for i in range(targets.ndim) if i != targets.ndim - 2)  # all but the channel axis
    mean = targets.mean(axis=axes, dtype=np.float64)
    std = targets.std(axis=axes, dtype=np.float64)
    if np.any(std == 0):
        raise ValueError(f"channels {[brain.ch_names[i] for i in np.flatnonzero(std == 0)]} are constant in "
                         f"{config.data_root}; drop them before training")
    scaled = ((brain.signals - mean[:, None]) / std[:, None]).astype(np.float32)
    dataset = data.BrainDataset(dataclasses.replace(brain, signals=scaled), features, trials=config.trials,
                                seed=config.seed)
    info = {"dataset": brain.dataset, "subject": brain.subject, "ch_type": brain.ch_type, "ch_names": brain.ch_names,
            "sfreq": brain.sfreq, "times": [float(t) for t in brain.times], "n_channels": len(brain.ch_names),
            "n_times": len(brain.times), "n_train_images": brain.n_images, "trials": config.trials,
            "conditioning": config.conditioning, "cond_dim": cond_dim, "encoder": encoder_info,
            "normalisation": {"mean": mean.tolist(), "std": std.tolist(),
                              "note": "per-channel z-score over the training targets; data = model * std + mean"}}
    return TrainingData(dataset, info)


def global_batch(dataset, seed: int, step: int, batch_size: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The (cond, x0) batch of step ``step``, a pure function of (seed, step); without replacement when it fits."""
    rng = np.random.default_rng([seed, step, 0xBA7C4])
    rows = rng.choice(len(dataset), size=batch_size, replace=batch_size > len(dataset))
    items = [dataset[int(i)] for i in rows]
    signals = torch.stack([signal for _, signal in items])
    cond = torch.stack([c for c, _ in items]) if dataset.features is not None else None
    return cond, signals


def to_data_units(x, meta: dict):
    """Model-unit signals (..., C, T), tensor or array, back to the data's units with the stored statistics."""
    norm = meta["normalisation"]
    mean, std = np.asarray(norm["mean"])[:, None], np.asarray(norm["std"])[:, None]
    if torch.is_tensor(x):
        return x * torch.as_tensor(std, dtype=x.dtype, device=x.device) + torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    return (x * std + mean).astype(np.asarray(x).dtype, copy=False)


# ----------------------------------------------------------------------------- the loop

# Config fields a resumed run must share with its checkpoint: they fix the data, the network and its targets.
SAME_ON_RESUME = ("modality", "subject", "encoder", "conditioning", "base_channels", "trials", "num_train_timesteps",
                  "beta_schedule", "prediction_type", "seed")


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False, progress: bool = True) -> TrainResult:
    """Train as ``config`` says; ``resume`` continues from the newest checkpoint in ``config.output_dir``."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from . import unet

    accelerator = Accelerator(cpu=runtime.best_device(config.device).type == "cpu")
    main, device = accelerator.is_main_process, accelerator.device
    shards = accelerator.num_processes * config.gradient_accumulation_steps
    if config.batch_size % shards:
        raise ValueError(f"batch_size {config.batch_size} must split evenly into {accelerator.num_processes} processes "
                         f"x {config.gradient_accumulation_steps} accumulation steps")
    output_dir = Path(config.output_dir)
    checkpoints = output_dir / CHECKPOINT_DIR
    latest = checkpoint.latest_checkpoint(checkpoints)
    if latest is not None and not resume:
        if not overwrite:
            raise ValueError(f"{output_dir} already holds checkpoints of a run ({latest.name}); resume it "
                             "(--resume), start again (--overwrite), or choose another output directory")
        if main:
            shutil.rmtree(checkpoints)
        accelerator.wait_for_everyone()
        latest = None
    saved = None
    if latest is not None:
        saved = checkpoint.load_checkpoint(latest)  # checks every file before anything else is done
        _check_same_run(saved[1]["config"], config, latest)

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
        start, losses, seconds = _restore(saved, latest, prepared, model, ema, optimizer, scheduler)
        if main:
            print(f"resuming {output_dir} from step {start} ({latest})")
    ddp_model, wrapped_optimizer = accelerator.prepare(model, optimizer)
    loss_model = _LossModel(ddp_model, model)

    shard_size = config.batch_size // shards
    bar = tqdm(total=config.steps, initial=start, unit="step", desc=f"train {config.conditioning}",
               disable=not (progress and main))
    began = time.perf_counter()
    for step in range(start + 1, config.steps + 1):  # ``step`` counts optimiser steps from 1
        cond, x0 = global_batch(prepared.dataset, config.seed, step, config.batch_size)
        step_loss = 0.0
        for micro in range(config.gradient_accumulation_steps):
            # Shard k of step n always gets rows [k b, (k+1) b) and noise seeded by (seed, n, k), whichever process
            # or accumulation step computes it: 2 processes x 1 micro-batch = 1 process x 2 micro-batches.
            k = micro * accelerator.num_processes + accelerator.process_index
            rows = slice(k * shard_size, (k + 1) * shard_size)
            generator = torch.Generator(device).manual_seed(_seed(config.seed, step, k))
            last = micro == config.gradient_accumulation_steps - 1
            with contextlib.nullcontext() if last else accelerator.no_sync(ddp_model), runtime.autocast(device):
                loss = diffusion.training_loss(loss_model, schedule, x0[rows].to(device),
                                               None if cond is None else cond[rows].to(device),
                                               cond_drop_prob=config.cond_drop_prob, generator=generator)
                shard_loss = accelerator.reduce(loss.detach().float(), reduction="mean").item()
                if not math.isfinite(shard_loss):
                    good = checkpoint.latest_checkpoint(checkpoints)
                    raise NonFiniteLossError(
                        f"the loss became {shard_loss} at step {step}; training stopped and wrote nothing for it. "
                        f"The last good checkpoint is {good or 'none (none was written yet)'}. Lower the learning "
                        f"rate (lr={config.lr}) or check the data, then resume with --resume")
                accelerator.backward(loss / config.gradient_accumulation_steps)
            step_loss += shard_loss / config.gradient_accumulation_steps
        accelerator.clip_grad_norm_(ddp_model.parameters(), config.grad_clip)
        wrapped_optimizer.step()
        scheduler.step()
        wrapped_optimizer.zero_grad(set_to_none=True)
        ema.update(model, step)
        losses.append(step_loss)
        bar.update()
        bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.1e}", refresh=False)
        if step % config.checkpoint_every == 0 or step == config.steps:
            if main:
                _save(checkpoints, step, config, prepared, model, ema, optimizer, scheduler, losses,
                      seconds + time.perf_counter() - began)
            accelerator.wait_for_everyone()
    bar.close()
    elapsed = time.perf_counter() - began
    model_dir = output_dir / MODEL_DIR
    if main:
        meta = {**prepared.info, "schedule": {"num_train_timesteps": config.num_train_timesteps,
                                              "beta_schedule": config.beta_schedule,
                                              "prediction_type": config.prediction_type},
                "config": dataclasses.asdict(config),
                "training": {"steps": config.steps, "seconds": round(seconds + elapsed, 1),
                             "processes": accelerator.num_processes, "device": str(device),
                             "final_loss": float(np.mean(losses[-50:])) if losses else None}}
        checkpoint.export_model(ema.copy_to(unet.UNet1D(**dataclasses.asdict(model.config))), model_dir, meta)
    accelerator.wait_for_everyone()
    return TrainResult(output_dir, model_dir, losses, start, elapsed)


class _LossModel(torch.nn.Module):
    """The DDP-wrapped network for the forward pass (so gradients are averaged), the plain one for its null condition."""

    def __init__(self, wrapped: torch.nn.Module, plain: torch.nn.Module):
        super().__init__()
        self.wrapped, self.null_condition = wrapped, plain.null_condition

    def forward(self, *args, **kwargs):
        return self.wrapped(*args, **kwargs)


def _seed(seed: int, step: int, shard: int) -> int:
    """A 63-bit seed for one shard of one step, mixed by NumPy's SeedSequence so nearby inputs give unrelated streams."""
    return int(np.random.SeedSequence([seed, step, shard]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _check_same_run(saved: dict, config: TrainConfig, path: Path) -> None:
    for field in SAME_ON_RESUME:
        if saved[field] != getattr(config, field):
            raise checkpoint.CheckpointError(
                f"{path} belongs to a run with {field}={saved[field]!r}, but this run asks for "
                f"{getattr(config, field)!r}; resume with the same {field}, or train in another output directory")


def _save(root, step, config, prepared, model, ema, optimizer, scheduler, losses, seconds) -> Path:
    optimizer_tensors, optimizer_info = checkpoint.optimizer_to_safe(optimizer.state_dict())
    rng_tensors, rng_info = checkpoint.capture_rng()
    # BrainDataset's single-trial draws depend on how often each image was drawn; keep those counters too.
    rng_tensors["dataset_draws"] = torch.from_numpy(prepared.dataset._draws.copy())
    tensors = {"model": model.state_dict(), "ema": ema.shadow, "optimizer": optimizer_tensors, "rng": rng_tensors}
    state = {"config": dataclasses.asdict(config), "info": prepared.info, "optimizer": optimizer_info,
             "scheduler": scheduler.state_dict(), "rng": rng_info, "losses": losses, "seconds": seconds}
    return checkpoint.save_checkpoint(root, step, tensors, state, keep=config.keep_checkpoints)


def _restore(saved, path, prepared, model, ema, optimizer, scheduler) -> tuple[int, list[float], float]:
    tensors, state = saved
    checkpoint.check_compatible(state["info"], prepared.info, source=path)
    try:
        model.load_state_dict(tensors["model"])
        ema.shadow = {k: v.to(ema.shadow[k].device) for k, v in tensors["ema"].items()}
        optimizer.load_state_dict(checkpoint.optimizer_from_safe(tensors["optimizer"], state["optimizer"]))
    except (RuntimeError, KeyError, ValueError) as error:
        raise checkpoint.CheckpointError(f"{path} does not fit the model this config builds: {error}") from error
    scheduler.load_state_dict(state["scheduler"])
    rng = dict(tensors["rng"])
    prepared.dataset._draws[:] = rng.pop("dataset_draws").numpy()
    checkpoint.restore_rng(rng, state["rng"])
    return state["step"], list(state["losses"]), float(state["seconds"])
