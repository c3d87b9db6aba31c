"""Notebook 05 (DDPM and DDIM): when has the forward process destroyed half of the signal?"""

from __future__ import annotations

from . import first_wrong_number, unanswered, verdict


def half_signal_step(beta_schedule: str, num_train_timesteps: int = 1000) -> int:
    """The first step t (counted from 0) with sqrt(alpha_bar_t) < 0.5, i.e. alpha_bar_t < 0.25."""
    from i2b_minimal.method.diffusion import NoiseSchedule

    alphas_cumprod = NoiseSchedule(num_train_timesteps, beta_schedule).alphas_cumprod
    return int((alphas_cumprod.sqrt() < 0.5).nonzero()[0])


def check_half_signal_step(linear, cosine) -> bool | None:
    """First t at which the signal's weight sqrt(alpha_bar_t) in x_t falls below 0.5, for both schedules."""
    if unanswered(linear, cosine):
        return None
    expected = {"linear": half_signal_step("linear"), "cosine": half_signal_step("cosine")}
    hint = ("x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. Take NoiseSchedule(beta_schedule=...)"
            ".alphas_cumprod.sqrt(), compare it with 0.5 and find the first True: (... < 0.5).nonzero()[0]. "
            "Steps are counted from 0, as in the library.")
    wrong = first_wrong_number({"linear": linear, "cosine": cosine}, expected)
    if wrong:
        return verdict(False, "", f"check the {wrong} schedule. {hint}")
    return verdict(True, f"linear: t = {expected['linear']}, cosine: t = {expected['cosine']}. The cosine schedule "
                   "keeps the signal longer, so fewer steps are wasted on nearly pure noise (Nichol & Dhariwal 2021).", "")
