"""The readouts of a diffusion model, checked with a denoiser that is exact in closed form.

For Gaussian data x_0 | c ~ N(mu_c, s^2 I) and x_t = sqrt(a) x_0 + sqrt(1 - a) eps, the exact
posterior mean is E[x_0 | x_t, c] = mu + sqrt(a) s^2 / (a s^2 + 1 - a) (x_t - sqrt(a) mu), so the
network that the simple loss would train is known, and so is everything its readouts should return.
"""

import numpy as np
import pytest
import torch

from i2b_minimal.evaluation import ceilings, correlation
from i2b_minimal.method import diffusion, readouts


class GaussianDenoiser(torch.nn.Module):
    """The optimal network for x_0 | c ~ N(c, s^2 I): the condition is the mean itself, (B, C, T)."""

    def __init__(self, schedule: diffusion.NoiseSchedule, spread: float):
        super().__init__()
        self.schedule, self.spread = schedule, spread
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a parameter, so callers can find the device

    def forward(self, x_t, t, cond):
        a = self.schedule.alphas_cumprod[t].view(-1, 1, 1)
        s2 = self.spread**2
        x0 = cond + a.sqrt() * s2 / (a * s2 + 1 - a) * (x_t - a.sqrt() * cond)
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        return eps if self.schedule.prediction_type == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0


def _means(n_images=4, n_channels=2, n_times=8):
    return 2.0 * torch.randn((n_images, n_channels, n_times), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_conditional_mean_is_the_average_of_the_exact_denoiser_over_x_T_from_N01(prediction_type):
    """On a short schedule, where abar_T = 0.37, drawing x_T from N(0, I) has a large, known effect.

    Averaged over x_T ~ N(0, I), the exact denoiser's x_0 is mu (1 - a) / (a s^2 + 1 - a); one draw
    varies by sqrt(a) s^2 / (a s^2 + 1 - a) around it.
    """
    schedule = diffusion.NoiseSchedule(num_train_timesteps=100, prediction_type=prediction_type)
    a, spread, draws = schedule.alphas_cumprod[-1].item(), 1.0, 512
    assert 0.3 < a < 0.4
    mu = _means()
    result = readouts.conditional_mean(GaussianDenoiser(schedule, spread), schedule, mu, mu.shape, num_draws=draws)
    expected = mu * (1 - a) / (a * spread**2 + 1 - a)
    sd = np.sqrt(a) * spread**2 / (a * spread**2 + 1 - a) / np.sqrt(draws)
    assert result.shape == mu.shape and result.dtype == torch.float32
    assert torch.max(torch.abs(result - expected)) < 5 * sd  # 64 values, each within 5 s.d.
    assert torch.max(torch.abs(result - mu)) > 10 * sd  # ...and visibly not mu: the bias is real here


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_conditional_mean_returns_the_conditional_mean_within_the_stated_bias(prediction_type):
    """On the linear schedule of Ho et al. (abar_T = 4e-5) the bias, abar_T s^2 |mu|, is negligible."""
    schedule = diffusion.NoiseSchedule(num_train_timesteps=1000, prediction_type=prediction_type)
    a, spread = schedule.alphas_cumprod[-1].item(), 3.0
    mu = _means()
    result = readouts.conditional_mean(GaussianDenoiser(schedule, spread), schedule, mu, mu.shape)
    sd = np.sqrt(a) * spread**2 / np.sqrt(readouts.DEFAULT_DRAWS)  # the spread over the 16 draws of x_T
    assert torch.all(torch.abs(result - mu) < a * spread**2 * torch.abs(mu) + 5 * sd)
    assert 5 * sd < 0.03 * spread  # the mean to within 3% of the spread of single draws of the data


def test_conditional_mean_does_not_depend_on_the_batch():
    schedule = diffusion.NoiseSchedule(num_train_timesteps=100)
    model, mu = GaussianDenoiser(schedule, 1.0), _means(n_images=5)
    whole = readouts.conditional_mean(model, schedule, mu, mu.shape, num_draws=8, seed=3)
    in_pieces = readouts.conditional_mean(model, schedule, mu, mu.shape, num_draws=8, seed=3, batch_size=8)
    first_two = readouts.conditional_mean(model, schedule, mu[:2], (2, *mu.shape[1:]), num_draws=8, seed=3)
    torch.testing.assert_close(in_pieces, whole)
    torch.testing.assert_close(first_two, whole[:2])
    other_seed = readouts.conditional_mean(model, schedule, mu, mu.shape, num_draws=8, seed=4)
    assert not torch.allclose(other_seed, whole)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_mean_of_k_samples_converges_to_the_conditional_mean(sampler):
    """The distance falls like s / sqrt(K): each sample is the conditional mean plus a trial's variability."""
    schedule = diffusion.NoiseSchedule(num_train_timesteps=1000)
    spread, mu = 1.0, _means()
    model = GaussianDenoiser(schedule, spread)
    target = readouts.conditional_mean(model, schedule, mu, mu.shape)
    k_max = 256 if sampler == "ddim" else 64
    cond = mu.repeat_interleave(k_max, dim=0)
    shape = (len(cond), *mu.shape[1:])
    generator = torch.Generator().manual_seed(1)
    if sampler == "ddim":
        flat = diffusion.ddim_sample(model, schedule, shape, cond, num_inference_steps=50, generator=generator,
                                     progress=False)
    else:
        flat = diffusion.ddpm_sample(model, schedule, shape, cond, generator=generator, progress=False)
    samples = flat.view(len(mu), k_max, *mu.shape[1:])
    distances = {}
    for k in (1, 4, 16, 64, 256):
        if k <= k_max:
            mean_of_k = readouts.readout_predictions(samples[:, :k], target)["mean_of_k"]
            distances[k] = torch.sqrt(torch.mean((mean_of_k - target) ** 2)).item()
    ks = sorted(distances)
    assert all(distances[big] < distances[small] for small, big in zip(ks, ks[1:]))
    for k, distance in distances.items():  # 64 values per distance: about 9% sampling error
        assert distance * np.sqrt(k) / spread == pytest.approx(1.0, abs=0.35)


def test_readout_predictions_from_samples():
    samples = np.arange(2 * 3 * 1 * 2, dtype=float).reshape(2, 3, 1, 2)
    mean = np.zeros((2, 1, 2))
    result = readouts.readout_predictions(samples, mean)
    assert result["conditional_mean"] is mean
    np.testing.assert_array_equal(result["single"], samples[:, 0])
    np.testing.assert_array_equal(result["mean_of_k"], (samples[:, 0] + samples[:, 1] + samples[:, 2]) / 3)
    tensors = readouts.readout_predictions(torch.from_numpy(samples), torch.from_numpy(mean))
    np.testing.assert_array_equal(tensors["mean_of_k"].numpy(), result["mean_of_k"])
    with pytest.raises(ValueError, match="same images"):
        readouts.readout_predictions(samples, mean[:1])


def test_a_perfect_sampler_is_capped_unless_read_out_by_its_conditional_mean():
    """Truth plus training-level noise: the mean of K samples reaches corr sqrt(V / (V + sd^2 / K)) times the
    ceiling; its conditional mean (the truth) reaches the true ceiling itself.

    With unit-variance truth across images, training-level noise of s.d. sd_train and test data
    averaged over R repetitions of noise s.d. sd_test, the theory is
    corr(mean of K, test) = sqrt(1 / (1 + sd_train^2 / K)) * sqrt(1 / (1 + sd_test^2 / R)).
    """
    rng = np.random.default_rng(0)
    n_images, shape, sd_train, sd_test, n_reps = 2000, (2, 4), 1.5, 4.0, 8
    truth = rng.normal(size=(n_images, *shape))
    test = truth[:, None] + sd_test * rng.normal(size=(n_images, n_reps, *shape))
    samples = truth[:, None] + sd_train * rng.normal(size=(n_images, 64, *shape))
    ceiling = np.sqrt(1 / (1 + sd_test**2 / n_reps))
    for k in (1, 4, 16, 64):
        predictions = readouts.readout_predictions(samples[:, :k], truth)
        score = correlation.correlation_across_images(predictions["mean_of_k"], test.mean(axis=1)).mean()
        assert score == pytest.approx(np.sqrt(1 / (1 + sd_train**2 / k)) * ceiling, abs=0.03)
    single = correlation.correlation_across_images(predictions["single"], test.mean(axis=1)).mean()
    assert single == pytest.approx(np.sqrt(1 / (1 + sd_train**2)) * ceiling, abs=0.03)
    best = correlation.correlation_across_images(predictions["conditional_mean"], test.mean(axis=1))
    np.testing.assert_allclose(best, ceilings.true_noise_ceiling(truth, test))
    assert best.mean() == pytest.approx(ceiling, abs=0.03)


def test_bad_input_is_a_clear_error():
    schedule = diffusion.NoiseSchedule(num_train_timesteps=100)
    model, mu = GaussianDenoiser(schedule, 1.0), _means()
    with pytest.raises(ValueError, match="num_draws"):
        readouts.conditional_mean(model, schedule, mu, mu.shape, num_draws=0)
    with pytest.raises(ValueError, match="3 rows but shape asks for 4"):
        readouts.conditional_mean(model, schedule, mu[:3], mu.shape)
