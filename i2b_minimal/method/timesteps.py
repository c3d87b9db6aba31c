"""Which noise levels training visits: uniform t (Ho et al. 2020), or uniform t with extra draws at high noise.

Algorithm 1 of Ho et al. 2020 draws t uniformly from {0, ..., T-1}. Drawing t
from another distribution p(t) is the same objective weighted by
w(t) = T p(t), and every positive weighting has the same minimiser at every t:
the conditional expectation of the network's target given (x_t, t, c)
(Kingma & Gao 2023, "Understanding diffusion objectives as the ELBO with simple
data augmentation"; Kingma et al. 2021, "Variational diffusion models"). So changing
p(t) leaves the reverse process, DDPM and DDIM exactly as they are; what it
changes is where a network of finite size, trained for finite steps, spends
its effort.

Why spend more of it at high noise, here. At small t, x_t shows x_0 almost
whole and the image hardly matters; the image-to-response map, what an
encoding model is, has to be learned at large t, where the network must say
what x_0 is from the image alone. The conditional-mean readout
(``method/readouts.py``) reads the network at t = T-1 only. With uniform t,
one draw in ten lands in the top tenth of the steps.

:func:`sample_timesteps` therefore mixes two uniform distributions: with
probability ``high_noise_fraction`` a draw comes from the top tenth
{T - T/10, ..., T-1}, otherwise from all of {0, ..., T-1}. Every step keeps a
positive probability, so no step the sampler takes is left untrained, and
``high_noise_fraction = 0`` is Ho et al.'s uniform draw, with the very same
random numbers. The fraction is a setting of ``i2b train`` (``TrainConfig``),
chosen by the ablation on the validation split in ``benchmarks/quality.py``.
"""

from __future__ import annotations

import torch

HIGH_NOISE_SHARE_OF_STEPS = 0.1  # "high noise": the top tenth of the T steps, where x_0 is nearly hidden


def high_noise_start(num_train_timesteps: int) -> int:
    """The first step of the high-noise band {T - T/10, ..., T-1} (at least the last step alone)."""
    return num_train_timesteps - max(1, round(HIGH_NOISE_SHARE_OF_STEPS * num_train_timesteps))


def sample_timesteps(batch: int, num_train_timesteps: int, high_noise_fraction: float = 0.0,
                     generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """``batch`` steps t in {0, ..., T-1}: uniform, except that a ``high_noise_fraction`` share come from the top tenth.

    The draws use ``generator`` (on its own device) and land on ``device``.
    """
    if not 0.0 <= high_noise_fraction < 1.0:
        raise ValueError(f"high_noise_fraction must lie in [0, 1), got {high_noise_fraction}: at 1 the low-noise "
                         "steps the sampler ends with would never be trained")
    source = generator.device if generator is not None else device
    t = torch.randint(0, num_train_timesteps, (batch,), generator=generator, device=source)
    if high_noise_fraction > 0:
        high = torch.randint(high_noise_start(num_train_timesteps), num_train_timesteps, (batch,),
                             generator=generator, device=source)
        t = torch.where(torch.rand(batch, generator=generator, device=source) < high_noise_fraction, high, t)
    return t.to(device)

