"""The robust trainer: the training step of ``method/loop.py``, with what a real run needs around it.

Each optimiser step is Algorithm 1's step (Ho et al. 2020; the condition dropout of
Ho & Salimans 2022): ``loop.accumulate_gradient`` on each shard of the step's
batch, then ``loop.descend``, the very functions ``loop.training_step`` is made of.
Around them:

* **the data** in model units and the batch of every step (``batches.py``);
* **AdamW** with a warm-up and a cosine decay (``optimizer.py``), and an **EMA**
  of the weights for sampling (``ema.py``);
* **reproducible randomness**: step n draws its batch from (seed, n) and shard k
  of that batch its noise from (seed, n, k) (``loop.step_generator``), so a
  resumed run continues exactly where it stopped, and the result depends on how
  the batch is cut into shards, not on which process (or which
  gradient-accumulation micro-batch) computes a shard;
* **many processes** from Hugging Face Accelerate (``accelerate launch`` or
  ``torchrun``): it places the model, wraps it in DistributedDataParallel,
  averages the gradients, and says which process writes the files;
* **one run per output folder**, checked writable and locked before anything in it
  is touched; a resume must match the data as well as the config (``run_folder.py``);
* **checkpoints** every ``checkpoint_every`` steps and exact **resume**
  (``checkpoint.py``), a **guard** that stops at the first NaN loss, and the
  **export** of the EMA model (``export.py``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2b_minimal.method import diffusion, loop, unet
from i2b_minimal.method.hardware import autocast, best_device

from . import checkpoint, export, run_folder
from .batches import TrainingData, global_batch, prepare_data
from .config import SAME_ON_RESUME, TrainConfig
from .ema import EMA
from .optimizer import learning_rate_factor, optimizer_and_scheduler  # noqa: F401 -- learning_rate_factor: train.*

MODEL_DIR = "model"  # <output_dir>/model: the exported EMA model (export.py)
CHECKPOINT_DIR = "checkpoints"  # <output_dir>/checkpoints/step-XXXXXXXX (checkpoint.py)


@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path | None  # the exported EMA model (export.load_trained reads it); None when stopped early
    losses: list[float]  # the mean loss of every step since step 1, including those before a resume
    start_step: int  # 0, or the checkpoint step this call resumed from
    seconds: float  # wall time of this call's steps


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped without writing a checkpoint."""


@dataclass
class _Run:
    """A run in progress: what a checkpoint saves, and what the steps change."""

    config: TrainConfig
    data: TrainingData
    model: unet.UNet1D
    ema: EMA
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    losses: list[float]
    start: int = 0  # the step this call starts after
    seconds: float = 0.0  # training time before this call


def build_model(config: TrainConfig, info: dict) -> unet.UNet1D:
    """The run's U-Net for the data ``info`` describes, its initial weights drawn from ``config.seed`` alone."""
    torch.manual_seed(config.seed)
    n_subjects = len(info["subjects"]) if len(info["subjects"]) > 1 else 0  # one subject: no subject embedding
    return unet.UNet1D(n_channels=info["n_channels"], cond_dim=info["cond_dim"], n_subjects=n_subjects,
                       **config.unet_kwargs())


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False, stop_after: int | None = None,
          progress: bool = True) -> TrainResult:
    """Train as ``config`` says, checkpointing on the way, and export the EMA model to ``<output_dir>/model``.

    ``resume`` continues from the newest checkpoint in ``config.output_dir``;
    ``overwrite`` deletes its checkpoints and starts again. ``stop_after`` ends
    this call after that step, with a checkpoint, as a time limit would (a
    Colab session, a test); resuming later gives exactly the uninterrupted run.
    """
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=best_device(config.device).type == "cpu")
    _check_batch_split(config, accelerator.num_processes, stop_after)
    if resume and overwrite:
        raise ValueError("--resume continues the run in --output-dir and --overwrite deletes it: choose one")
    output_dir, main = Path(config.output_dir), accelerator.is_main_process
    if main:
        run_folder.check_writable(output_dir)
    with run_folder.exclusive(output_dir, main):
        # The data first: a wrong --data-root fails here, before --overwrite has deleted anything.
        data = prepare_data(config, progress and main, accelerator)
        saved, source = _open_run(config, output_dir / CHECKPOINT_DIR, accelerator, resume, overwrite, data.info)
        run = _start(config, data, accelerator.device, saved, source)
        if saved is not None and main:
            print(f"resuming {output_dir} from step {run.start} ({source})")
        last_step = config.steps if stop_after is None else min(stop_after, config.steps)
        elapsed = _train_steps(run, last_step, accelerator, output_dir, progress and main)
        finished = last_step == config.steps
        if main and finished:
            _export(run, output_dir / MODEL_DIR, run.seconds + elapsed, accelerator)
            if progress:
                print(f"exported the EMA model to {output_dir / MODEL_DIR}")
        accelerator.wait_for_everyone()
    return TrainResult(output_dir, output_dir / MODEL_DIR if finished else None, run.losses, run.start, elapsed)


def _train_steps(run: _Run, last_step: int, accelerator, output_dir: Path, progress: bool) -> float:
    """Steps ``run.start + 1`` to ``last_step``, checkpointing on the way; returns their wall time."""
    from tqdm.auto import tqdm

    config, checkpoints = run.config, output_dir / CHECKPOINT_DIR
    ddp_model, ddp_optimizer = accelerator.prepare(run.model, run.optimizer)
    schedule = diffusion.NoiseSchedule(config.num_train_timesteps, config.beta_schedule, config.prediction_type)
    bar = tqdm(total=config.steps, initial=run.start, unit="step", desc=f"train {config.conditioning}",
               disable=not progress)
    began = time.perf_counter()
    for step in range(run.start + 1, last_step + 1):  # ``step`` counts optimiser steps from 1
        lr = run.scheduler.get_last_lr()[0]
        loss = _optimiser_step(run, step, schedule, accelerator, ddp_model, ddp_optimizer, checkpoints)
        run.scheduler.step()
        run.ema.update(run.model, step)
        run.losses.append(loss)
        bar.update()
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.1e}", refresh=False)
        if config.checkpoint_every and (step % config.checkpoint_every == 0 or step == last_step):
            if accelerator.is_main_process:  # the processes hold identical weights; one writes them
                _save(run, checkpoints, step, run.seconds + time.perf_counter() - began)
            accelerator.wait_for_everyone()
    bar.close()
    return time.perf_counter() - began


def _optimiser_step(run: _Run, step: int, schedule, accelerator, ddp_model, ddp_optimizer, checkpoints) -> float:
    """One step of the global batch: ``loop.accumulate_gradient`` shard by shard, then ``loop.descend``."""
    config, device = run.config, accelerator.device
    processes, micro_batches = accelerator.num_processes, config.gradient_accumulation_steps
    shard_size = config.batch_size // (processes * micro_batches)
    cond, x0, subject = global_batch(run.data.dataset, config.seed, step, config.batch_size)
    subject = subject if run.model.subjects is not None else None  # a model of one subject has no table
    step_loss = 0.0
    for micro in range(micro_batches):
        # Shard k = micro * P + rank: 2 processes x 1 micro-batch compute what 1 process x 2 micro-batches does.
        k = micro * processes + accelerator.process_index
        rows = slice(k * shard_size, (k + 1) * shard_size)
        # Gradients are averaged across processes once, after the last micro-batch. The forward pass goes through
        # the DDP wrapper (which averages), the null condition comes from the network itself (DDP hides it).
        with accelerator.no_sync(ddp_model) if micro < micro_batches - 1 else contextlib.nullcontext():
            loss = loop.accumulate_gradient(
                ddp_model, schedule, None if cond is None else cond[rows].to(device), x0[rows].to(device),
                run.model.null_condition, config.cond_drop_prob, loop.step_generator(config.seed, step, k, device),
                weight=1 / micro_batches, precision=autocast(device), backward=accelerator.backward,
                high_noise_fraction=config.high_noise_fraction,
                subject=None if subject is None else subject[rows].to(device))
        shard_loss = accelerator.reduce(loss.float(), reduction="mean").item()  # the same on every process
        if not math.isfinite(shard_loss):  # before the optimiser step: the weights are still those of step - 1
            raise NonFiniteLossError(
                f"the loss became {shard_loss} at step {step}; training stopped and wrote nothing for it. "
                f"The last good checkpoint is {checkpoint.latest_checkpoint(checkpoints) or 'none yet'}. "
                f"Lower the learning rate (lr={config.lr}) or check the data, then resume with --resume")
        step_loss += shard_loss / micro_batches
    loop.descend(ddp_model, ddp_optimizer, config.grad_clip, clip=accelerator.clip_grad_norm_)
    return step_loss


# ----------------------------------------------------------------------------- start, save, export


def _check_batch_split(config: TrainConfig, processes: int, stop_after: int | None) -> None:
    micro_batches = config.gradient_accumulation_steps
    if config.batch_size % (processes * micro_batches):
        raise ValueError(f"batch_size {config.batch_size} must split evenly into {processes} processes x "
                         f"{micro_batches} accumulation steps")
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"--stop-after must be a step >= 1, not {stop_after}")
    if stop_after is not None and not config.checkpoint_every:
        raise ValueError("stop_after leaves a checkpoint to resume from, but checkpoint_every=0 writes none")


def _open_run(config: TrainConfig, checkpoints: Path, accelerator, resume: bool, overwrite: bool, info: dict):
    """``(saved checkpoint, its path)`` to resume from, or ``(None, None)`` for a fresh start.

    Called once everything else is checked: only then may ``overwrite`` delete the old checkpoints.
    """
    latest = checkpoint.latest_checkpoint(checkpoints)
    if latest is not None and resume:
        saved = checkpoint.load_checkpoint(latest)  # every file is verified before anything else happens
        _check_same_run(saved[1]["config"], config, latest)
        export.check_compatible(saved[1]["info"], info, source=latest)  # the shapes first: the plainest message
        run_folder.check_same_data(saved[1]["info"], info, latest)
        return saved, latest
    if resume and accelerator.is_main_process:
        print(f"no checkpoint in {checkpoints} to resume from: starting at step 0")
    if latest is not None and not overwrite:
        raise ValueError(f"{checkpoints.parent} already holds checkpoints of a run ({latest.name}); resume it "
                         "(--resume), start again (--overwrite), or choose another output directory")
    if latest is not None:
        if accelerator.is_main_process:
            shutil.rmtree(checkpoints)
        accelerator.wait_for_everyone()
    return None, None


def _start(config: TrainConfig, data: TrainingData, device, saved, source) -> _Run:
    """A fresh run on ``device``, or, from ``saved``, the run exactly as it was at that checkpoint."""
    model = build_model(config, data.info).to(device)
    optimizer, scheduler = optimizer_and_scheduler(model, config)
    run = _Run(config, data, model, EMA(model, config.ema_decay), optimizer, scheduler, losses=[])
    if saved is None:
        return run
    ema_weights, extra, state = checkpoint.restore_training_state(saved, model, optimizer, scheduler, source)
    run.ema.shadow = {k: v.to(device) for k, v in ema_weights.items()}
    # The single-trial draws depend on how often each image was drawn: the dataset continues from its counts.
    data.dataset.load_state_dict({k.removeprefix("dataset."): v.numpy() for k, v in extra.items()})
    run.start, run.losses, run.seconds = state["step"], list(state["losses"]), state["seconds"]
    return run


def _save(run: _Run, checkpoints: Path, step: int, seconds: float) -> None:
    state = {"config": dataclasses.asdict(run.config), "info": run.data.info, "losses": run.losses, "seconds": seconds}
    dataset_state = {f"dataset.{k}": torch.from_numpy(v) for k, v in run.data.dataset.state_dict().items()}
    checkpoint.save_training_state(checkpoints, step, run.model, run.ema.shadow, run.optimizer, run.scheduler, state,
                                   dataset_state, keep=run.config.keep_checkpoints)


def _export(run: _Run, folder: Path, seconds: float, accelerator) -> None:
    config, losses = run.config, run.losses
    meta = {**run.data.info, "config": dataclasses.asdict(config),
            "schedule": {"num_train_timesteps": config.num_train_timesteps,
                         "beta_schedule": config.beta_schedule, "prediction_type": config.prediction_type},
            "training": {"steps": config.steps, "seconds": round(seconds, 1), "processes": accelerator.num_processes,
                         "device": str(accelerator.device),
                         "final_loss": float(np.mean(losses[-50:])) if losses else None}}
    export.export_model(run.ema.copy_to(copy.deepcopy(run.model)), folder, meta)


def _check_same_run(saved: dict, config: TrainConfig, path: Path) -> None:
    mine = json.loads(json.dumps(dataclasses.asdict(config)))  # as the checkpoint stored it: tuples as lists
    for field in SAME_ON_RESUME:
        if saved.get(field) != mine[field]:
            raise checkpoint.CheckpointError(
                f"{path} belongs to a run with {field}={saved.get(field)!r}, but this run asks for "
                f"{getattr(config, field)!r}; resume with the same {field}, or train in another output directory")
