"""AdamW (Loshchilov & Hutter 2019) with a linear warm-up, then a cosine decay or a constant rate."""

from __future__ import annotations

import math

LR_SCHEDULES = ("cosine", "constant")


def learning_rate_factor(step: int, config) -> float:
    """Multiplier of ``config.lr`` at optimiser step ``step`` (from 0): linear warm-up, then constant or cosine.

    ``config`` is a ``TrainConfig`` (lr_schedule, warmup_steps, steps).
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))  # Loshchilov & Hutter 2017, without restarts


def optimizer_and_scheduler(model, config):
    """AdamW over ``model``'s parameters at ``config.lr``, and the scheduler that applies the factor above."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config))
    return optimizer, scheduler
