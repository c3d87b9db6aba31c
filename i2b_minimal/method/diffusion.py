"""Diffusion: add noise step by step, learn to remove it, then generate from pure noise.

The forward process (Ho et al. 2020, eq. 2) adds a little Gaussian noise at each
of T steps, with variances beta_1..beta_T (the *schedule*). Any step can be
reached in one jump (eq. 4), with alpha_t = 1 - beta_t and
alpha_bar_t = prod_{s<=t} alpha_s:

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,    eps ~ N(0, I)

A network learns to predict eps from (x_t, t, image) (eq. 14, the "simple" loss);
running the process backwards with that prediction generates signals:

* **DDPM** (Ho et al. 2020, Alg. 2) takes all T stochastic steps;
* **DDIM** (Song et al. 2021, eq. 12) jumps over steps, deterministically when
  eta = 0, so 50 steps replace 1000.

**Classifier-free guidance** (Ho & Salimans 2022): during training the image is
replaced by the null condition with probability ``cond_drop_prob``, so one
network learns both eps(x_t, image) and eps(x_t, no image). At sampling time
the two are extrapolated, eps_uncond + s (eps_cond - eps_uncond): s = 1 is the
plain conditional model, s > 1 follows the image more closely.

Names follow diffusers' ``DDPMScheduler`` where they overlap (betas, alphas,
alphas_cumprod, add_noise, prediction_type, "squaredcos_cap_v2"), and the
tests check every step against it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import timesteps
from .hardware import autocast

BETA_SCHEDULES = ("linear", "cosine")
PREDICTION_TYPES = ("epsilon", "v_prediction")


class NoiseSchedule:
    """The variances beta_t of the forward process and everything derived from them (float32 tensors, on CPU)."""

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                 prediction_type: str = "epsilon", beta_start: float = 1e-4, beta_end: float = 0.02):
        if beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"unknown beta_schedule {beta_schedule!r}; choose one of {BETA_SCHEDULES}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unknown prediction_type {prediction_type!r}; choose one of {PREDICTION_TYPES}")
        if num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be at least 2, got {num_train_timesteps}")
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.prediction_type = prediction_type
        if beta_schedule == "linear":
            # Ho et al. 2020, Sec. 4: betas grow linearly from 1e-4 to 0.02 over T = 1000 steps.
            self.betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        else:
            # Nichol & Dhariwal 2021, eq. 17: alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) pi/2), s = 0.008,
            # and beta_t = 1 - alpha_bar(t) / alpha_bar(t-1), capped at 0.999 so the last steps stay finite.
            def alpha_bar(u: float) -> float:
                return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

            steps = range(num_train_timesteps)
            self.betas = torch.tensor(
                [min(1 - alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps), 0.999)
                 for i in steps], dtype=torch.float32)
        # Ho et al. 2020, Sec. 2 (before eq. 4): alpha_t = 1 - beta_t and alpha_bar_t = prod_{s<=t} alpha_s.
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)

    def __repr__(self) -> str:
        return (f"NoiseSchedule(num_train_timesteps={self.num_train_timesteps}, "
                f"beta_schedule={self.beta_schedule!r}, prediction_type={self.prediction_type!r})")

    def alpha_bar(self, t, like: torch.Tensor) -> torch.Tensor:
        """alpha_bar_t for an int t, or per example for t of shape (B,), broadcastable against ``like``.

        t = -1 means "before the first step", where nothing has been added: alpha_bar = 1.
        """
        values = torch.cat([self.alphas_cumprod, self.alphas_cumprod.new_ones(1)])  # index -1 -> 1.0
        if isinstance(t, int):
            return values[t].to(like.device, like.dtype)
        shape = (-1,) + (1,) * (like.dim() - 1)
        return values.to(like.device)[t.to(like.device)].to(like.dtype).view(shape)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x_0) (Ho et al. 2020, eq. 4): sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise."""
        a_bar = self.alpha_bar(t, x0)
        return a_bar.sqrt() * x0 + (1 - a_bar).sqrt() * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The v-prediction target v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho 2022, Sec. 4)."""
        a_bar = self.alpha_bar(t, x0)
        return a_bar.sqrt() * noise - (1 - a_bar).sqrt() * x0

    def predict_x0_and_noise(self, model_output: torch.Tensor, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Turn the network's output (eps or v) into the implied clean signal x_0 and noise eps.

        epsilon: invert eq. 4 (Ho et al. 2020, eq. 15). v: x_0 = sqrt(a) x_t - sqrt(1 - a) v,
        eps = sqrt(a) v + sqrt(1 - a) x_t (Salimans & Ho 2022, Sec. 4), with a = alpha_bar_t.
        """
        a_bar = self.alpha_bar(t, x_t)
        if self.prediction_type == "epsilon":
            return (x_t - (1 - a_bar).sqrt() * model_output) / a_bar.sqrt(), model_output
        return a_bar.sqrt() * x_t - (1 - a_bar).sqrt() * model_output, a_bar.sqrt() * model_output + (1 - a_bar).sqrt() * x_t


# -- randomness: drawn on the generator's device, so a seed gives the same numbers on every machine ------


def _randn(shape, generator, device) -> torch.Tensor:
    """N(0, I) of ``shape`` from ``generator``: one generator, or a list of one per row (diffusers' convention).

    With one generator per row, row i depends on generator i alone, so a sample does not change with what
    else is in its batch.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]} rows; give one per row")
        return torch.cat([_randn((1, *shape[1:]), row, device) for row in generator])
    source = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=source).to(device)


# -- training --------------------------------------------------------------------------------------------


def training_loss(model, schedule: NoiseSchedule, x0: torch.Tensor, cond: torch.Tensor | None,
                  null_condition=None, cond_drop_prob: float = 0.1,
                  generator: torch.Generator | None = None, high_noise_fraction: float = 0.0,
                  subject: torch.Tensor | None = None) -> torch.Tensor:
    """One Monte-Carlo estimate of the denoising loss (Ho et al. 2020, Alg. 1 and eq. 14).

    Draw t (uniformly, or with a ``high_noise_fraction`` share from the top tenth of the steps:
    ``method/timesteps.py``, which says why the sampler stays exact) and eps ~ N(0, I), noise x0 to
    x_t, and regress the network's output on eps (or on v for ``prediction_type="v_prediction"``). Each example's
    condition is replaced by ``null_condition(cond)`` with probability
    ``cond_drop_prob`` (Ho & Salimans 2022, Alg. 1): give the model's own
    ``null_condition``, the null that ``cond=None`` means, so that the unconditional
    model used for guidance is trained. It is an argument of its own, not looked up
    on ``model``, because ``model`` may be a wrapper (DistributedDataParallel) that
    forwards calls but not methods; the loss needs nothing else from the network.
    ``subject``: each example's row in a multi-subject model's table (``subjects.py``), never dropped.
    """
    if not 0.0 <= cond_drop_prob <= 1.0:
        raise ValueError(f"cond_drop_prob must lie in [0, 1], got {cond_drop_prob}")
    if cond is not None and cond_drop_prob > 0 and null_condition is None:
        raise ValueError(f"cond_drop_prob={cond_drop_prob} replaces conditions by the null condition: pass "
                         "null_condition (the model's, e.g. UNet1D.null_condition), or use cond_drop_prob=0")
    batch, device = x0.shape[0], x0.device
    source = generator.device if generator is not None else device
    t = timesteps.sample_timesteps(batch, schedule.num_train_timesteps, high_noise_fraction, generator, device)
    noise = _randn(x0.shape, generator, device)
    if cond is not None and cond_drop_prob > 0:
        drop = torch.rand(batch, generator=generator, device=source).to(device) < cond_drop_prob
        drop = drop.view((-1,) + (1,) * (cond.dim() - 1))
        cond = torch.where(drop, null_condition(cond), cond)
    x_t = schedule.add_noise(x0, noise, t)
    target = noise if schedule.prediction_type == "epsilon" else schedule.velocity(x0, noise, t)
    return F.mse_loss(denoise(model, x_t, t, cond, subject), target)


def denoise(model, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None, subject: torch.Tensor | None):
    """The network's output; ``subject`` is passed only when given (a model of several subjects), so any
    ``model(x_t, t, cond)`` denoiser serves a model of one subject."""
    return model(x_t, t, cond) if subject is None else model(x_t, t, cond, subject=subject)


# -- one reverse step each, checked against diffusers in the tests ---------------------------------------


def guided_model_output(model, x_t: torch.Tensor, t: int, cond: torch.Tensor | None, guidance_scale: float = 1.0,
                        subject: torch.Tensor | None = None):
    """The network's output at step t with classifier-free guidance (Ho & Salimans 2022, eq. 6).

    out = out_uncond + s (out_cond - out_uncond), which is eq. 6's
    (1 + w) out_cond - w out_uncond with w = s - 1. With s = 1 this is exactly the
    conditional output, so only the conditional pass runs; otherwise both passes
    run as one batch of 2B, which is about as fast as one on most hardware. The
    network runs in the caller's precision (the samplers choose bf16 on a GPU);
    its output is taken to float32 before the extrapolation. Both passes are of the same ``subject``.
    """
    t_batch = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
    if guidance_scale == 1.0 or cond is None:
        return denoise(model, x_t, t_batch, cond, subject).float()
    both = denoise(model, torch.cat([x_t, x_t]), torch.cat([t_batch, t_batch]),
                   torch.cat([cond, model.null_condition(cond)]), None if subject is None else torch.cat([subject, subject]))
    out_cond, out_uncond = both.float().chunk(2)
    return out_uncond + guidance_scale * (out_cond - out_uncond)


def ddpm_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: int):
    """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7).

    mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
    variance = (1 - abar_{t-1}) / (1 - abar_t) beta_t  (the "beta tilde" choice of sigma_t^2, Sec. 3.2)
    """
    a_bar, a_bar_prev = schedule.alpha_bar(t, x_t), schedule.alpha_bar(t - 1, x_t)
    # alpha_t = abar_t / abar_{t-1}, taken from the same rounded abar values (as diffusers does): in float32,
    # 1 - abar_0 keeps only ~3 digits, and the stored beta_0 over it would scale the last step's x_0 by ~1.0005.
    alpha = a_bar / a_bar_prev
    beta = 1 - alpha
    mean = a_bar_prev.sqrt() * beta / (1 - a_bar) * x0 + alpha.sqrt() * (1 - a_bar_prev) / (1 - a_bar) * x_t
    variance = (1 - a_bar_prev) / (1 - a_bar) * beta
    return mean, variance


def ddpm_step(schedule: NoiseSchedule, model_output: torch.Tensor, t: int, x_t: torch.Tensor,
              generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """x_{t-1} = posterior mean + sigma_t z, z ~ N(0, I); no noise at the last step (Ho et al. 2020, Alg. 2).

    Writing the mean through the predicted x_0 (eq. 7) is the same as Alg. 2's
    1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) and also serves v-prediction.
    """
    x0, _ = schedule.predict_x0_and_noise(model_output, x_t, t)
    mean, variance = ddpm_posterior(schedule, x0, x_t, t)
    if t == 0:
        return mean
    if noise is None:
        noise = _randn(x_t.shape, generator, x_t.device)
    return mean + variance.sqrt() * noise


def ddim_step(schedule: NoiseSchedule, model_output: torch.Tensor, t: int, prev_t: int, x_t: torch.Tensor,
              eta: float = 0.0, generator: torch.Generator | None = None,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    """Jump from step t to prev_t < t (Song et al. 2021, eq. 12); prev_t = -1 means the clean signal.

    x_prev = sqrt(abar_prev) x0_pred + sqrt(1 - abar_prev - sigma^2) eps_pred + sigma z, with
    sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev) (eq. 16).
    eta = 0 is deterministic; eta = 1 with prev_t = t - 1 is the DDPM step.
    """
    a_bar, a_bar_prev = schedule.alpha_bar(t, x_t), schedule.alpha_bar(prev_t, x_t)
    x0, eps = schedule.predict_x0_and_noise(model_output, x_t, t)
    sigma = eta * ((1 - a_bar_prev) / (1 - a_bar) * (1 - a_bar / a_bar_prev)).sqrt()
    x_prev = a_bar_prev.sqrt() * x0 + (1 - a_bar_prev - sigma**2).sqrt() * eps
    if eta > 0:
        if noise is None:
            noise = _randn(x_t.shape, generator, x_t.device)
        x_prev = x_prev + sigma * noise
    return x_prev


def ddim_timesteps(num_train_timesteps: int, num_inference_steps: int) -> list[int]:
    """The steps DDIM visits, from noisiest to cleanest, evenly spaced.

    "Trailing" spacing (Lin et al. 2024, Table 2; diffusers' ``timestep_spacing="trailing"``):
    the first step is T - 1, where training put (almost) pure noise, e.g. 999, 979, ..., 19
    for 50 steps. Each step jumps to the next one in this list (the last to -1, the clean signal).
    """
    if not 1 <= num_inference_steps <= num_train_timesteps:
        raise ValueError(f"num_inference_steps must lie in 1..{num_train_timesteps}, got {num_inference_steps}")
    ratio = num_train_timesteps / num_inference_steps
    return [round(num_train_timesteps - i * ratio) - 1 for i in range(num_inference_steps)]


# -- samplers --------------------------------------------------------------------------------------------


def _reverse_chain(model, shape, cond, guidance_scale, generator, steps, reverse_step, return_trajectory, progress,
                   desc, subject):
    """x_T ~ N(0, I), then ``x = reverse_step(output, t, x)`` for each t of ``steps``: what both samplers do."""
    if cond is None and guidance_scale != 1.0:
        raise ValueError(f"guidance_scale={guidance_scale} needs a condition to guide towards; pass cond or use 1.0")
    if cond is not None and cond.shape[0] != shape[0]:
        raise ValueError(f"cond has {cond.shape[0]} rows but shape asks for {shape[0]} samples; they must match")
    device = next(model.parameters()).device
    cond = cond.to(device) if cond is not None else None
    subject = subject.to(device) if subject is not None else None
    x = _randn(shape, generator, device)
    trajectory = [x.cpu()] if return_trajectory else None
    for t in tqdm(steps, desc=desc, disable=not progress):
        with autocast(device):  # the network in bf16 on a GPU (hardware.py); the reverse step stays in float32
            out = guided_model_output(model, x, t, cond, guidance_scale, subject)
        x = reverse_step(out, t, x)
        if trajectory is not None:
            trajectory.append(x.cpu())
    return (x, trajectory) if return_trajectory else x


@torch.no_grad()
def ddpm_sample(model, schedule: NoiseSchedule, shape, cond: torch.Tensor | None, guidance_scale: float = 1.0,
                generator: torch.Generator | None = None, return_trajectory: bool = False, progress: bool = True,
                subject: torch.Tensor | None = None):
    """Generate ``shape`` = (B, C, T) signals with all T ancestral steps (Ho et al. 2020, Alg. 2).

    Returns the samples (B, C, T), or (samples, trajectory) where trajectory is
    the list of T + 1 states x_T, ..., x_0 on the CPU. The random numbers come
    from ``generator`` in the order x_T, then one draw per step, as in diffusers;
    a list of generators, one per row, gives each sample its own stream.
    ``subject``: the (B,) rows of a multi-subject model's subjects, or None (one subject, or the average one).
    """
    def reverse_step(out, t, x):
        return ddpm_step(schedule, out, t, x, generator=generator)

    steps = range(schedule.num_train_timesteps - 1, -1, -1)
    return _reverse_chain(model, shape, cond, guidance_scale, generator, steps, reverse_step, return_trajectory,
                          progress, desc="DDPM", subject=subject)


@torch.no_grad()
def ddim_sample(model, schedule: NoiseSchedule, shape, cond: torch.Tensor | None, num_inference_steps: int = 50,
                eta: float = 0.0, guidance_scale: float = 1.0, generator: torch.Generator | None = None,
                return_trajectory: bool = False, progress: bool = True, subject: torch.Tensor | None = None):
    """Generate ``shape`` = (B, C, T) signals in ``num_inference_steps`` DDIM jumps (Song et al. 2021, eq. 12).

    Same return values as :func:`ddpm_sample` (the trajectory has
    num_inference_steps + 1 states).
    """
    steps = ddim_timesteps(schedule.num_train_timesteps, num_inference_steps)
    previous = dict(zip(steps, steps[1:] + [-1]))  # each step jumps to the next one visited; the last to x_0

    def reverse_step(out, t, x):
        return ddim_step(schedule, out, t, previous[t], x, eta=eta, generator=generator)

    return _reverse_chain(model, shape, cond, guidance_scale, generator, steps, reverse_step, return_trajectory,
                          progress, desc="DDIM", subject=subject)
