"""Notebook 07 (sampling and guidance): write classifier-free guidance; what sampling costs in network passes."""

from __future__ import annotations

import torch

from . import Case, as_number, check_function, check_numbers, unanswered, verdict


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
    expected = {"ddpm": network_evaluations("ddpm", guidance_scale, num_inference_steps),
                "ddim": network_evaluations("ddim", guidance_scale, num_inference_steps)}
    hint = ("one pass per step, and two per step when guidance_scale != 1 (the conditional and the unconditional "
            "prediction; diffusion.guided_model_output). DDPM takes all 1000 training steps, DDIM only "
            "num_inference_steps.")
    return check_numbers({"ddpm": ddpm, "ddim": ddim}, expected, lambda wrong: f"check {wrong.upper()}: {hint}",
                         f"DDPM {expected['ddpm']}, DDIM {expected['ddim']}: DDIM is "
                         f"{expected['ddpm'] // expected['ddim']}x cheaper, and guidance doubles the cost of both "
                         "(with guidance_scale = 1 only the conditional pass runs).")


def solution_guided_prediction(eps_cond: torch.Tensor, eps_uncond: torch.Tensor,
                               guidance_scale: float) -> torch.Tensor:
    """Classifier-free guidance u + s (c - u) (Ho & Salimans 2022, eq. 6, with s = 1 + w, as in diffusers)."""
    ### BEGIN SOLUTION
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)  # go s times the step from u to c
    ### END SOLUTION


def check_guided_prediction(guided_prediction, guidance_scale: float = 3.0) -> bool | None:
    """Compare ``guided_prediction(c, u, s)`` with ``diffusion.guided_model_output`` on a small random U-Net."""
    from i2b_minimal.method.diffusion import guided_model_output
    from i2b_minimal.method.unet import UNet1D

    torch.manual_seed(7)
    model = UNet1D(3, cond_dim=8, base_channels=8, channel_mults=(1, 2), num_heads=2).eval()
    x_t, cond = torch.randn(2, 3, 16), torch.randn(2, 5, 8)
    with torch.no_grad():
        c = model(x_t, torch.full((2,), 500), cond)
        u = model(x_t, torch.full((2,), 500), model.null_condition(cond))
        expected = guided_model_output(model, x_t, 500, cond, guidance_scale)
    s = guidance_scale
    mistakes = [
        ((1 + s) * c - s * u, f"this is eq. 6 with w = s; the library's scale is s = 1 + w, so that s = 1 means no "
         "guidance: eps_uncond + s (eps_cond - eps_uncond)."),
        (c + s * (u - c), "guidance starts from the unconditional prediction and moves towards (and past) the "
         "conditional one: eps_uncond + s (eps_cond - eps_uncond)."),
        (s * c + u, "scale the difference eps_cond - eps_uncond, then add it to eps_uncond."),
    ]
    inputs = {"eps_cond": c, "eps_uncond": u, "guidance_scale": guidance_scale}
    return check_function(guided_prediction, [Case(inputs, expected, mistakes)],
                          "your guidance matches diffusion.guided_model_output: s = 1 gives the conditional "
                          "prediction, s > 1 pushes past it, away from the unconditional one.")
