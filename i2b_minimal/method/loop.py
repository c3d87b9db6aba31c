"""Training, the paper's algorithm and nothing else (Ho et al. 2020, Algorithm 1).

With the condition dropout of classifier-free guidance (Ho & Salimans 2022, Algorithm 1)::

    repeat
        (c, x_0) ~ the data                                  a batch of (image, brain signal) pairs
        c <- null with probability p_uncond                  \
        t ~ Uniform({0, ..., T - 1}),  eps ~ N(0, I)          } diffusion.training_loss
        gradient step on || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, c) ||^2
    until converged

(The network may predict v instead of eps, Salimans & Ho 2022; the loss regresses whichever it predicts.
``high_noise_fraction`` > 0 draws a share of t from the top tenth of the steps instead: the same
minimiser at every t, so the same sampler, with more of the training where the image matters,
``method/timesteps.py``.)

A step has two halves: :func:`accumulate_gradient` (the loss of a batch and its
gradient) and :func:`descend` (clip the gradient, take the optimiser step).
:func:`training_step` is the two in a row and :func:`train_loop` repeats it.
The robust trainer (``training/train.py``, see ARCHITECTURE.md) calls the same two
halves, with its shards, processes and checkpoints around them, so there is one
definition of a training step; a test checks that both give the same weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import numpy as np
import torch

from . import diffusion


def step_generator(seed: int, step: int, shard: int = 0, device="cpu") -> torch.Generator:
    """The random numbers of step ``step`` (and of shard ``shard`` of its batch), from a seed of their own.

    Seeding every step, instead of drawing from one running stream, makes step n the same whatever ran
    before it: a run resumed at step n continues exactly, and a batch cut into shards gives the same
    draws whichever process computes a shard. NumPy's SeedSequence mixes (seed, step, shard) so that
    neighbouring steps get unrelated streams; the top bit is dropped to fit torch's signed 64-bit seed.
    """
    mixed = np.random.SeedSequence([seed, step, shard]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)
    return torch.Generator(device).manual_seed(int(mixed))


def accumulate_gradient(model, schedule: diffusion.NoiseSchedule, cond: torch.Tensor | None, x0: torch.Tensor,
                        null_condition: Callable | None, cond_drop_prob: float = 0.1,
                        generator: torch.Generator | None = None, weight: float = 1.0,
                        precision: contextlib.AbstractContextManager = contextlib.nullcontext(),
                        backward: Callable = torch.Tensor.backward, high_noise_fraction: float = 0.0,
                        subject: torch.Tensor | None = None) -> torch.Tensor:
    """Algorithm 1 up to its gradient: the loss of the batch (c, x_0), and ``weight`` times its gradient.

    The gradient is added to the parameters' ``.grad``, so the batch may be one part of a step
    (``weight`` = 1/m for one of m parts). ``precision`` is the context of the forward pass and
    ``backward`` takes the gradient: nothing and plain autograd here; the robust trainer passes bf16
    autocast on a GPU and Accelerate's backward. ``subject``: the examples' rows in a multi-subject
    model's table (``subjects.py``). Returns the (detached) loss.
    """
    with precision:
        loss = diffusion.training_loss(model, schedule, x0, cond, null_condition, cond_drop_prob, generator,
                                       high_noise_fraction, subject)
    backward(loss * weight)
    return loss.detach()


def descend(model: torch.nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float,
            clip: Callable = torch.nn.utils.clip_grad_norm_) -> None:
    """Algorithm 1's gradient step: clip the gradient's norm to ``grad_clip``, step, and clear the gradient."""
    clip(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def training_step(model, optimizer: torch.optim.Optimizer, schedule: diffusion.NoiseSchedule,
                  cond: torch.Tensor | None, x0: torch.Tensor, cond_drop_prob: float = 0.1, grad_clip: float = 1.0,
                  generator: torch.Generator | None = None, high_noise_fraction: float = 0.0) -> float:
    """One pass through Algorithm 1's loop on the batch (c, x_0); returns its loss."""
    loss = accumulate_gradient(model, schedule, cond, x0, model.null_condition, cond_drop_prob, generator,
                               high_noise_fraction=high_noise_fraction)
    descend(model, optimizer, grad_clip)
    return loss.item()


def train_loop(model, optimizer: torch.optim.Optimizer, schedule: diffusion.NoiseSchedule,
               batches: Iterable[tuple[torch.Tensor | None, torch.Tensor]], cond_drop_prob: float = 0.1,
               grad_clip: float = 1.0, seed: int = 0, high_noise_fraction: float = 0.0) -> list[float]:
    """Algorithm 1 over ``batches`` of (cond, x0), one step each, step n drawing from ``step_generator(seed, n)``.

    Returns the loss of every step. The batches are the caller's: any iterable, a list or a generator.
    """
    losses = []
    for step, (cond, x0) in enumerate(batches, start=1):
        generator = step_generator(seed, step, device=x0.device)
        losses.append(training_step(model, optimizer, schedule, cond, x0, cond_drop_prob, grad_clip, generator,
                                    high_noise_fraction))
    return losses
