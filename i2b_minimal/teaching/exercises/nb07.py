"""Notebook 07 (sampling and guidance): the guided prediction, and what sampling costs in network evaluations."""

from __future__ import annotations

from . import as_number, first_wrong_number, unanswered, verdict


def guided(eps_cond: float, eps_uncond: float, guidance_scale: float) -> float:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6, as diffusers writes it): u + s (c - u)."""
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def check_guided_value(answer, eps_cond: float = 0.8, eps_uncond: float = 0.2,
                       guidance_scale: float = 3.0) -> bool | None:
    """The guided noise prediction for one number of the conditional and unconditional predictions."""
    if unanswered(answer):
        return None
    expected = guided(eps_cond, eps_uncond, guidance_scale)
    value = as_number(answer)
    ok = value is not None and abs(value - expected) <= 1e-9
    return verdict(ok, f"{eps_uncond} + {guidance_scale} x ({eps_cond} - {eps_uncond}) = {expected:g}: guidance "
                   "moves past the conditional prediction, away from the unconditional one.",
                   "guidance starts from the unconditional prediction and goes guidance_scale times the step "
                   "from unconditional to conditional: eps_uncond + s (eps_cond - eps_uncond).")


def network_evaluations(sampler: str, guidance_scale: float, num_inference_steps: int = 50,
                        num_train_timesteps: int = 1000) -> int:
    """Passes of one signal through the U-Net to generate it: steps x (2 with guidance, else 1)."""
    steps = num_train_timesteps if sampler == "ddpm" else num_inference_steps
    return steps * (1 if guidance_scale == 1.0 else 2)


def check_network_evaluations(ddpm, ddim, guidance_scale: float = 3.0, num_inference_steps: int = 50) -> bool | None:
    """U-Net passes per generated signal for DDPM (1000 steps) and DDIM, both with ``guidance_scale``."""
    if unanswered(ddpm, ddim):
        return None
    expected = {"ddpm": network_evaluations("ddpm", guidance_scale, num_inference_steps),
                "ddim": network_evaluations("ddim", guidance_scale, num_inference_steps)}
    hint = ("one pass per step, and two per step when guidance_scale != 1 (the conditional and the unconditional "
            "prediction; diffusion.guided_model_output). DDPM takes all 1000 training steps, DDIM only "
            "num_inference_steps.")
    wrong = first_wrong_number({"ddpm": ddpm, "ddim": ddim}, expected)
    if wrong:
        return verdict(False, "", f"check {wrong.upper()}: {hint}")
    return verdict(True, f"DDPM {expected['ddpm']}, DDIM {expected['ddim']}: DDIM is "
                   f"{expected['ddpm'] // expected['ddim']}x cheaper, and guidance doubles the cost of both "
                   "(with guidance_scale = 1 only the conditional pass runs).", "")
