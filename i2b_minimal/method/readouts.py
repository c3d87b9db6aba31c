"""Three ways to read one prediction per image out of a diffusion model.

A diffusion model generates single trials, noise and all; an encoding model is
scored on one prediction per image. Three readouts turn the first into the
second, and every table should say which it shows:

* ``conditional_mean`` (:func:`conditional_mean`): the denoiser's estimate of
  E[x_0 | image], read at the noisiest step. The headline readout.
* ``mean_of_k``: the mean of K full samples. It approaches the conditional
  mean as K grows, but for any finite K it keeps 1/K of a trial's variability,
  which caps its correlation with the test data below the ceiling even for a
  perfect sampler.
* ``single``: one sample, what the model says a single trial looks like.

:func:`readout_predictions` gathers the three from K samples per image and the
conditional mean.

Why the noisiest step estimates the conditional mean. Trained with the simple
loss (Ho et al. 2020, eq. 14) the network's output at step t is, at its
optimum, the conditional expectation of its target given (x_t, t, c), so the
x_0 it implies (``schedule.predict_x0_and_noise``, for eps- and for
v-prediction alike, since both are linear in x_0 given x_t) is
``f_t(x_t) = E[x_0 | x_t, c]``. By the tower property,

    E_{x_t ~ q(x_t | c)}[ E[x_0 | x_t, c] ] = E[x_0 | c],

at every t. At t = T-1, ``q(x_T | c)`` is a mixture of
``N(sqrt(abar_T) x_0, (1 - abar_T) I)``, within sqrt(abar_T) of N(0, I) in each
coordinate (sqrt(abar_T) = 0.006 for the linear schedule of Ho et al., 5e-5
for the cosine one). So we average ``f_{T-1}`` over M draws of x_T ~ N(0, I).
The cost of drawing from N(0, I) instead of q(x_T | c) is small: by Tweedie's
formula the slope of f in x_T is ``sqrt(abar_T) / (1 - abar_T) Cov[x_0 | x_T, c]``
and the two distributions' means differ by ``sqrt(abar_T) E[x_0 | c]``, so to
first order the bias is ``-abar_T / (1 - abar_T) Cov[x_0 | x_T, c] E[x_0 | c]``:
abar_T (4e-5) times the data's variance times its mean, well below the
sqrt(abar_T) by which the two distributions differ. (For Gaussian data,
x_0 | c ~ N(mu, s^2 I), it is exactly ``-abar_T s^2 mu / (abar_T s^2 + 1 - abar_T)``.)
An exact denoiser barely changes with x_T (its spread over draws is about
sqrt(abar_T) times the data's variance); a trained one changes more, because
with eps-prediction x_0 = (x_T - sqrt(1 - abar_T) eps) / sqrt(abar_T) magnifies
its error in eps by 1 / sqrt(abar_T), hence the M draws.
"""

from __future__ import annotations

import numpy as np
import torch

from .diffusion import denoise

# M: a trained denoiser's x_0 at step T-1 varies with x_T. For the bundled EEG model one draw's variance about its
# image's mean is 1.0% of the variance across images, so 16 draws keep 0.9997 of the correlation an infinite
# number would reach (benchmarks/results/readout_draws.md).
DEFAULT_DRAWS = 16


@torch.no_grad()
def conditional_mean(model, schedule, cond: torch.Tensor | None, shape, num_draws: int = DEFAULT_DRAWS,
                     seed: int = 0, batch_size: int = 256, subject: torch.Tensor | None = None) -> torch.Tensor:
    """E[x_0 | c] per image: the denoiser's x_0 at t = T-1, averaged over ``num_draws`` draws of x_T ~ N(0, I).

    ``shape`` = (n_images, C, T); ``cond``: n_images conditions as the network
    reads them (tokens, pooled embeddings) or None. Image i draws its x_T from
    its own stream, seeded with (seed, i), so its readout does not depend on
    ``batch_size`` (how many network evaluations run at once) nor on the
    images after it, and M draws are the first M of a larger M. The network
    runs in float32: 1 / sqrt(abar_T) would magnify bf16's rounding too. No
    classifier-free guidance: guidance changes what the output estimates.
    ``subject``: each image's row in a multi-subject model's table, or None.
    Returns (n_images, C, T) float32 on the model's device.
    """
    n_images = shape[0]
    if num_draws < 1:
        raise ValueError(f"num_draws must be at least 1, got {num_draws}")
    if cond is not None and cond.shape[0] != n_images:
        raise ValueError(f"cond has {cond.shape[0]} rows but shape asks for {n_images} images; they must match")
    device = next(model.parameters()).device
    last = schedule.num_train_timesteps - 1
    images_per_batch = max(1, batch_size // num_draws)
    means = []
    for start in range(0, n_images, images_per_batch):
        images = range(start, min(start + images_per_batch, n_images))
        x_t = torch.cat([_draws(seed, i, num_draws, shape[1:]) for i in images]).to(device)
        c = None if cond is None else cond[images.start:images.stop].to(device).repeat_interleave(num_draws, dim=0)
        s = None if subject is None else subject[images.start:images.stop].to(device).repeat_interleave(num_draws)
        t = torch.full((len(x_t),), last, dtype=torch.long, device=device)
        x0, _ = schedule.predict_x0_and_noise(denoise(model, x_t, t, c, s).float(), x_t, last)
        means.append(x0.view(len(images), num_draws, *shape[1:]).mean(dim=1))
    return torch.cat(means)


def readout_predictions(samples, conditional_mean) -> dict:
    """The three readouts from K samples per image, ``samples`` (n, K, C, T), and the conditional mean (n, C, T).

    Returns ``{"conditional_mean": ..., "mean_of_k": samples.mean over K, "single": samples[:, 0]}``,
    each (n, C, T), as numpy arrays or torch tensors as given. For a generator
    whose mean is known exactly (ridge plus Gaussian noise), pass that mean.
    """
    if samples.ndim != 4 or tuple(conditional_mean.shape) != (samples.shape[0], *samples.shape[2:]):
        raise ValueError(f"samples must be (n, K, C, T) and conditional_mean (n, C, T) of the same images; got "
                         f"{tuple(samples.shape)} and {tuple(conditional_mean.shape)}")
    return {"conditional_mean": conditional_mean, "mean_of_k": samples.mean(1), "single": samples[:, 0]}


def _draws(seed: int, image: int, num_draws: int, signal_shape) -> torch.Tensor:
    """Image ``image``'s x_T draws, (num_draws, C, T), from a CPU stream seeded with (seed, image)."""
    stream_seed = int(np.random.SeedSequence([seed, image]).generate_state(1)[0])
    return torch.randn((num_draws, *signal_shape), generator=torch.Generator().manual_seed(stream_seed))
