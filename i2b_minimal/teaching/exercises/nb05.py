"""Notebook 05 (DDPM and DDIM): write the forward jump q(x_t | x_0); when is half of the signal gone?"""

from __future__ import annotations

import torch

from . import Case, check_function, check_numbers


def half_signal_step(beta_schedule: str, num_train_timesteps: int = 1000) -> int:
    """The first step t (counted from 0) with sqrt(alpha_bar_t) < 0.5, i.e. alpha_bar_t < 0.25."""
    from i2b_minimal.method.diffusion import NoiseSchedule

    alphas_cumprod = NoiseSchedule(num_train_timesteps, beta_schedule).alphas_cumprod
    return int((alphas_cumprod.sqrt() < 0.5).nonzero()[0])


def check_half_signal_step(linear, cosine) -> bool | None:
    """First t at which the signal's weight sqrt(alpha_bar_t) in x_t falls below 0.5, for both schedules."""
    expected = {"linear": half_signal_step("linear"), "cosine": half_signal_step("cosine")}
    hint = ("x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. Take NoiseSchedule(beta_schedule=...)"
            ".alphas_cumprod.sqrt(), compare it with 0.5 and find the first True: (... < 0.5).nonzero()[0]. "
            "Steps are counted from 0, as in the library.")
    return check_numbers({"linear": linear, "cosine": cosine}, expected, lambda wrong: f"check the {wrong} schedule. {hint}",
                         f"linear: t = {expected['linear']}, cosine: t = {expected['cosine']}. The cosine schedule "
                         "keeps the signal longer, so fewer steps are wasted on nearly pure noise (Nichol & Dhariwal 2021).")


def solution_add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                       alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4), one t per example.

    x0, noise: (B, C, T); t: (B,) whole steps; alphas_cumprod: (num_train_timesteps,).
    """
    ### BEGIN SOLUTION
    a_bar = alphas_cumprod[t][:, None, None]  # (B, 1, 1): one alpha_bar per example, the same for every sample
    return a_bar.sqrt() * x0 + (1 - a_bar).sqrt() * noise
    ### END SOLUTION


def check_add_noise(add_noise) -> bool | None:
    """Compare ``add_noise(x0, noise, t, alphas_cumprod)`` with ``NoiseSchedule.add_noise`` (cosine schedule)."""
    from i2b_minimal.method.diffusion import NoiseSchedule

    schedule = NoiseSchedule(1000, "cosine")
    generator = torch.Generator().manual_seed(5)
    x0, noise = torch.randn(6, 17, 100, generator=generator), torch.randn(6, 17, 100, generator=generator)
    t = torch.tensor([0, 10, 250, 500, 750, 999])
    a_bar = schedule.alphas_cumprod[t][:, None, None]
    mistakes = [
        (a_bar * x0 + (1 - a_bar) * noise, "the weights are square roots: sqrt(alpha_bar) and sqrt(1 - alpha_bar), "
         "so that the variances add up to 1."),
        (a_bar.sqrt() * x0 + (1 - a_bar) * noise, "take the square root of the noise's weight too: "
         "sqrt(1 - alpha_bar_t)."),
        (a_bar.sqrt() * noise + (1 - a_bar).sqrt() * x0, "the signal x0 gets sqrt(alpha_bar_t) (close to 1 at small t) "
         "and the noise sqrt(1 - alpha_bar_t), not the other way round."),
    ]
    inputs = {"x0": x0, "noise": noise, "t": t, "alphas_cumprod": schedule.alphas_cumprod}
    return check_function(add_noise, [Case(inputs, schedule.add_noise(x0, noise, t), mistakes)],
                          "your x_t matches NoiseSchedule.add_noise: any step in one jump, the signal fading as "
                          "sqrt(alpha_bar_t) while the noise grows as sqrt(1 - alpha_bar_t).")
