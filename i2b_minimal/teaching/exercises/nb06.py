"""Notebook 06 (training): the learning-rate warm-up and the EMA's own warm-up."""

from __future__ import annotations

from . import as_number, unanswered, verdict


def learning_rate(step: int, config=None) -> float:
    """The learning rate at optimiser step ``step`` (from 0) of a run with ``config`` (default: TrainConfig())."""
    from i2b_minimal.training.config import TrainConfig
    from i2b_minimal.training.optimizer import learning_rate_factor

    config = config if config is not None else TrainConfig()
    return config.lr * learning_rate_factor(step, config)


def check_learning_rate(answer, step: int = 49, config=None) -> bool | None:
    """The learning rate at ``step`` of a run with ``config`` (default TrainConfig(): lr 5e-4, 100 warm-up steps)."""
    if unanswered(answer):
        return None
    from i2b_minimal.training.config import TrainConfig

    config = config if config is not None else TrainConfig()
    expected = learning_rate(step, config)
    value = as_number(answer)
    ok = value is not None and abs(value - expected) <= 1e-9 + 1e-6 * abs(expected)
    return verdict(ok, f"step {step} is step {step + 1} of the {config.warmup_steps}-step linear warm-up: "
                   f"{config.lr:g} x {step + 1}/{config.warmup_steps} = {expected:g}.",
                   "steps count from 0, and during the warm-up the factor is (step + 1) / warmup_steps; "
                   "multiply it by config.lr (train.learning_rate_factor is the rule).")


def ema_ramp_end(decay: float) -> int:
    """The first step n at which the EMA's ramped decay min(decay, (1 + n) / (10 + n)) reaches ``decay``."""
    import torch

    from i2b_minimal.training.ema import EMA

    ema = EMA(torch.nn.Identity(), decay)  # decay_at depends on the step only; no weights needed
    # (1 + n) / (10 + n) >= decay  <=>  n >= (10 decay - 1) / (1 - decay); round that guess, then step to the first n.
    n = max(0, int((10 * decay - 1) / (1 - decay)) - 2)
    while ema.decay_at(n) < decay:
        n += 1
    return n


def check_ema_ramp_end(answer, decay: float = 0.999) -> bool | None:
    """First step at which the EMA really uses ``decay`` (before that, the ramp (1 + n) / (10 + n) is smaller)."""
    if unanswered(answer):
        return None
    expected = ema_ramp_end(decay)
    return verdict(as_number(answer) == expected,
                   f"(1 + n) / (10 + n) reaches {decay} at step {expected}. A run shorter than that never "
                   "averages over the full 1 / (1 - decay) window: the ramp keeps the EMA close to the recent weights.",
                   f"solve (1 + n) / (10 + n) >= {decay} for the smallest whole n (multiply out: "
                   "n (1 - decay) >= 10 decay - 1), or loop over n with train.EMA(model, decay).decay_at(n).")
