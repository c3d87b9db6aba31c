"""Notebook 06 (training): write Algorithm 1's regression target; the learning-rate and the EMA's warm-ups."""

from __future__ import annotations

import torch

from . import Case, as_number, check_function, unanswered, verdict


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


def solution_regression_target(x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor,
                               prediction_type: str) -> torch.Tensor:
    """What the network learns to output from x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise.

    ``prediction_type`` "epsilon": the noise (Ho et al. 2020, Alg. 1); "v_prediction":
    v = sqrt(alpha_bar) noise - sqrt(1 - alpha_bar) x0 (Salimans & Ho 2022, Sec. 4).
    x0, noise: (B, C, T); alpha_bar: (B, 1, 1), each example's alpha_bar_t.
    """
    ### BEGIN SOLUTION
    if prediction_type == "epsilon":
        return noise
    return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0
    ### END SOLUTION


def check_regression_target(regression_target) -> bool | None:
    """Compare ``regression_target(x0, noise, alpha_bar, prediction_type)`` with the library's training target."""
    from i2b_minimal.method.diffusion import NoiseSchedule

    schedule = NoiseSchedule(1000, "linear")
    generator = torch.Generator().manual_seed(6)
    x0, noise = torch.randn(5, 17, 100, generator=generator), torch.randn(5, 17, 100, generator=generator)
    t = torch.tensor([0, 100, 400, 700, 999])
    a_bar = schedule.alpha_bar(t, x0)
    inputs = {"x0": x0, "noise": noise, "alpha_bar": a_bar}
    v_mistakes = [
        (noise, "with v-prediction the target is v = sqrt(alpha_bar) noise - sqrt(1 - alpha_bar) x0, not the noise."),
        (a_bar.sqrt() * x0 - (1 - a_bar).sqrt() * noise,
         "x0 and the noise are swapped: v = sqrt(alpha_bar) noise - sqrt(1 - alpha_bar) x0."),
    ]
    cases = [
        Case(inputs | {"prediction_type": "epsilon"}, noise,
             [(x0, "Algorithm 1 regresses the noise that was added, not the clean signal.")],
             label="for prediction_type='epsilon'"),
        Case(inputs | {"prediction_type": "v_prediction"}, schedule.velocity(x0, noise, t), v_mistakes,
             label="for prediction_type='v_prediction'"),
    ]
    return check_function(regression_target, cases,
                          "your targets are what diffusion.training_loss regresses on: the noise, or v, which "
                          "mixes noise and signal so that no step divides by a tiny sqrt(alpha_bar).")
