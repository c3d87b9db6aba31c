"""Diffusion against diffusers, an independent implementation: schedules, noising, one step, whole samplers.

diffusers' schedulers are set up to compute the same thing as ours: no clipping
of the predicted x_0, the "fixed_small" (beta tilde) DDPM variance, and for DDIM
alpha_bar = 1 before the first step with "trailing" timestep spacing.
"""

import contextlib

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from i2b_minimal import diffusion
from i2b_minimal.diffusion import NoiseSchedule
from i2b_minimal.unet import CONDITIONING_MODES, UNet1D

DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
SHAPE = (2, 17, 16)
COND_DIM = 12


def diffusers_ddpm(schedule: NoiseSchedule) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=schedule.num_train_timesteps,
                         beta_schedule=DIFFUSERS_NAME[schedule.beta_schedule],
                         prediction_type=schedule.prediction_type, variance_type="fixed_small", clip_sample=False)


def diffusers_ddim(schedule: NoiseSchedule, num_inference_steps: int) -> DDIMScheduler:
    scheduler = DDIMScheduler(num_train_timesteps=schedule.num_train_timesteps,
                              beta_schedule=DIFFUSERS_NAME[schedule.beta_schedule],
                              prediction_type=schedule.prediction_type, clip_sample=False, set_alpha_to_one=True,
                              steps_offset=0, timestep_spacing="trailing")
    scheduler.set_timesteps(num_inference_steps)
    return scheduler


def tiny_model(conditioning="cross_attention"):
    torch.manual_seed(0)
    return UNet1D(17, cond_dim=COND_DIM, conditioning=conditioning, base_channels=8, channel_mults=(1, 2),
                  layers_per_level=1, num_heads=2).eval()


def random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the forward process


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
@pytest.mark.parametrize("num_train_timesteps", [1000, 50])
def test_schedules_equal_diffusers(beta_schedule, num_train_timesteps):
    ours = NoiseSchedule(num_train_timesteps, beta_schedule)
    theirs = diffusers_ddpm(ours)
    torch.testing.assert_close(ours.betas, theirs.betas, rtol=1e-6, atol=0)
    torch.testing.assert_close(ours.alphas_cumprod, theirs.alphas_cumprod, rtol=1e-6, atol=0)
    if num_train_timesteps == 1000:  # from signal to (almost) pure noise
        assert ours.alphas_cumprod[0] > 0.99 and ours.alphas_cumprod[-1] < 1e-4


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
def test_add_noise_and_velocity_equal_diffusers(beta_schedule):
    ours = NoiseSchedule(1000, beta_schedule)
    theirs = diffusers_ddpm(ours)
    x0, noise, t = random(4, 17, 30, seed=1), random(4, 17, 30, seed=2), torch.tensor([0, 1, 500, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), theirs.add_noise(x0, noise, t))
    torch.testing.assert_close(ours.velocity(x0, noise, t), theirs.get_velocity(x0, noise, t))


def test_predicted_x0_and_noise_invert_the_forward_process():
    x0, noise, t = random(4, 17, 30, seed=1), random(4, 17, 30, seed=2), torch.tensor([0, 10, 500, 990])
    for prediction_type in diffusion.PREDICTION_TYPES:
        schedule = NoiseSchedule(1000, prediction_type=prediction_type)
        x_t = schedule.add_noise(x0, noise, t)
        exact = noise if prediction_type == "epsilon" else schedule.velocity(x0, noise, t)
        x0_hat, noise_hat = schedule.predict_x0_and_noise(exact, x_t, t)
        torch.testing.assert_close(noise_hat, noise, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(x0_hat, x0, rtol=1e-3, atol=2e-3)  # 1/sqrt(alpha_bar) ~ 10 at t=990


# ----------------------------------------------------------------------------- one reverse step


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
@pytest.mark.parametrize("t", [999, 500, 1, 0])
def test_ddpm_step_equals_diffusers(prediction_type, beta_schedule, t):
    ours = NoiseSchedule(1000, beta_schedule, prediction_type)
    theirs = diffusers_ddpm(ours)
    theirs.set_timesteps(1000)
    model_output, x_t = random(*SHAPE, seed=3), random(*SHAPE, seed=4)
    expected = theirs.step(model_output, t, x_t, generator=torch.Generator().manual_seed(5)).prev_sample
    torch.testing.assert_close(
        diffusion.ddpm_step(ours, model_output, t, x_t, generator=torch.Generator().manual_seed(5)), expected)

    # The posterior itself (Ho et al. 2020, eqs. 6-7): diffusers' variance, and its mean once the noise is removed.
    x0, _ = ours.predict_x0_and_noise(model_output, x_t, t)
    mean, variance = diffusion.ddpm_posterior(ours, x0, x_t, t)
    if t > 0:
        torch.testing.assert_close(variance, theirs._get_variance(t))
        expected = expected - variance.sqrt() * random(*SHAPE, seed=5)
    torch.testing.assert_close(mean, expected)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_equals_diffusers(prediction_type, beta_schedule, eta):
    ours = NoiseSchedule(1000, beta_schedule, prediction_type)
    theirs = diffusers_ddim(ours, 50)  # jumps of 20 steps
    model_output, x_t, noise = random(*SHAPE, seed=3), random(*SHAPE, seed=4), random(*SHAPE, seed=5)
    for t in (999, 519, 19):  # the first, a middle and the last jump (19 -> -1: the clean signal)
        expected = theirs.step(model_output, t, x_t, eta=eta, variance_noise=noise).prev_sample
        torch.testing.assert_close(diffusion.ddim_step(ours, model_output, t, t - 20, x_t, eta=eta, noise=noise),
                                   expected)


@pytest.mark.parametrize("num_inference_steps", [1, 7, 30, 50, 100, 333, 1000])
def test_ddim_timesteps_are_diffusers_trailing_spacing(num_inference_steps):
    expected = diffusers_ddim(NoiseSchedule(1000), num_inference_steps).timesteps.tolist()
    steps = diffusion.ddim_timesteps(1000, num_inference_steps)
    assert steps == expected
    assert steps[0] == 999 and len(set(steps)) == num_inference_steps


def test_ddim_with_eta_one_and_every_step_is_the_ddpm_step():
    schedule = NoiseSchedule(1000)
    model_output, x_t, noise = random(*SHAPE, seed=3), random(*SHAPE, seed=4), random(*SHAPE, seed=5)
    torch.testing.assert_close(diffusion.ddim_step(schedule, model_output, 500, 499, x_t, eta=1.0, noise=noise),
                               diffusion.ddpm_step(schedule, model_output, 500, x_t, noise=noise))


# ----------------------------------------------------------------------------- whole samplers


class DiffusersLoop:
    """diffusers' own sampling loop (as in its pipelines) around our network, for the same random draws."""

    def __init__(self, model, cond):
        self.model, self.cond = model, cond

    @torch.no_grad()
    def __call__(self, scheduler, generator, **step_kwargs):
        x = torch.randn(SHAPE, generator=generator)
        for t in scheduler.timesteps:
            out = self.model(x, torch.full((SHAPE[0],), int(t)), self.cond)
            x = scheduler.step(out, t, x, generator=generator, **step_kwargs).prev_sample
        return x


def test_ddpm_sampler_equals_the_diffusers_loop():
    model, cond = tiny_model(), random(SHAPE[0], 3, COND_DIM, seed=6)
    schedule = NoiseSchedule(20, "cosine")  # a short chain keeps it quick; every step is still checked
    theirs = diffusers_ddpm(schedule)
    theirs.set_timesteps(20)
    expected = DiffusersLoop(model, cond)(theirs, torch.Generator().manual_seed(7))
    samples = diffusion.ddpm_sample(model, schedule, SHAPE, cond, generator=torch.Generator().manual_seed(7),
                                    progress=False)
    torch.testing.assert_close(samples, expected)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_sampler_equals_the_diffusers_loop(eta):
    model, cond = tiny_model(), random(SHAPE[0], 3, COND_DIM, seed=6)
    schedule = NoiseSchedule(1000)
    expected = DiffusersLoop(model, cond)(diffusers_ddim(schedule, 10), torch.Generator().manual_seed(7), eta=eta)
    samples = diffusion.ddim_sample(model, schedule, SHAPE, cond, num_inference_steps=10, eta=eta,
                                    generator=torch.Generator().manual_seed(7), progress=False)
    torch.testing.assert_close(samples, expected)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_same_seed_same_samples_and_the_trajectory(sampler):
    model, cond = tiny_model(), random(SHAPE[0], 3, COND_DIM, seed=6)
    schedule = NoiseSchedule(20)

    def run(seed, **kwargs):
        generator = torch.Generator().manual_seed(seed)
        if sampler == "ddpm":
            return diffusion.ddpm_sample(model, schedule, SHAPE, cond, generator=generator, progress=False, **kwargs)
        return diffusion.ddim_sample(model, schedule, SHAPE, cond, num_inference_steps=5, eta=1.0,
                                     generator=generator, progress=False, **kwargs)

    samples, trajectory = run(0, return_trajectory=True)
    assert torch.equal(run(0), samples)
    assert not torch.allclose(run(1), samples)
    assert len(trajectory) == (21 if sampler == "ddpm" else 6)  # x_T, ..., x_0
    assert torch.equal(trajectory[0], random(*SHAPE, seed=0))  # x_T is the generator's first draw
    assert torch.equal(trajectory[-1], samples)
    assert all(state.shape == SHAPE for state in trajectory)


# ----------------------------------------------------------------------------- classifier-free guidance


@pytest.mark.parametrize("conditioning", [mode for mode in CONDITIONING_MODES if mode != "none"])
def test_guidance(conditioning):
    model = tiny_model(conditioning)
    x_t, cond = random(*SHAPE, seed=1), random(SHAPE[0], 3, COND_DIM, seed=6)
    t = torch.full((SHAPE[0],), 400)
    conditional, unconditional = model(x_t, t, cond), model(x_t, t, None)
    # s = 1 is exactly the conditional model (Ho & Salimans 2022, eq. 6), bit for bit.
    assert torch.equal(diffusion.guided_model_output(model, x_t, 400, cond, 1.0), conditional)
    # s != 1 extrapolates from the unconditional (null) prediction; both run as one batch.
    torch.testing.assert_close(diffusion.guided_model_output(model, x_t, 400, cond, 3.0),
                               unconditional + 3.0 * (conditional - unconditional), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(conditional, unconditional)


def test_samplers_with_guidance_one_use_only_the_conditional_prediction():
    model, cond = tiny_model(), random(SHAPE[0], 3, COND_DIM, seed=6)
    schedule = NoiseSchedule(1000)
    generator = torch.Generator().manual_seed(7)
    steps = diffusion.ddim_timesteps(1000, 8)
    with torch.no_grad():
        x = torch.randn(SHAPE, generator=generator)
        for t, prev_t in zip(steps, steps[1:] + [-1]):
            x = diffusion.ddim_step(schedule, model(x, torch.full((SHAPE[0],), t), cond), t, prev_t, x)
    samples = diffusion.ddim_sample(model, schedule, SHAPE, cond, 8, guidance_scale=1.0,
                                    generator=torch.Generator().manual_seed(7), progress=False)
    assert torch.equal(samples, x)
    guided = diffusion.ddim_sample(model, schedule, SHAPE, cond, 8, guidance_scale=3.0,
                                   generator=torch.Generator().manual_seed(7), progress=False)
    assert not torch.allclose(guided, samples)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_choose_the_precision_of_the_network_and_only_of_it(sampler, monkeypatch):
    # hardware.autocast is bf16 on a GPU and nothing on a CPU; record where the samplers enter it instead.
    inside, seen = [], []

    @contextlib.contextmanager
    def recording_autocast(device):
        seen.append(torch.device(device))
        inside.append(True)
        yield
        inside.pop()

    steps_taken = []

    def recorded(step):
        def step_that_says_where_it_ran(*args, **kwargs):
            steps_taken.append(bool(inside))
            return step(*args, **kwargs)
        return step_that_says_where_it_ran

    monkeypatch.setattr(diffusion, "autocast", recording_autocast)
    monkeypatch.setattr(diffusion, "ddpm_step", recorded(diffusion.ddpm_step))
    monkeypatch.setattr(diffusion, "ddim_step", recorded(diffusion.ddim_step))
    model, cond = tiny_model(), random(SHAPE[0], 3, COND_DIM, seed=6)
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(bool(inside)))
    if sampler == "ddpm":
        diffusion.ddpm_sample(model, NoiseSchedule(10), SHAPE, cond, guidance_scale=2.0, progress=False)
    else:
        diffusion.ddim_sample(model, NoiseSchedule(10), SHAPE, cond, 4, guidance_scale=2.0, progress=False)
    assert calls and all(calls)  # every network evaluation ran in the sampler's precision context
    assert steps_taken and not any(steps_taken)  # the reverse steps' arithmetic did not
    assert set(seen) == {torch.device("cpu")}  # chosen for the model's device
    calls.clear()
    diffusion.guided_model_output(model, random(*SHAPE), 5, cond, 2.0)
    assert calls == [False]  # the guidance equation itself chooses no precision


# ----------------------------------------------------------------------------- the training loss


class Recorder(torch.nn.Module):
    """Stands in for the U-Net: records what the loss feeds it and returns a fixed output."""

    def __init__(self, null):
        super().__init__()
        self.null = null

    def null_condition(self, like):
        return self.null.expand_as(like)

    def forward(self, x_t, t, cond):
        self.x_t, self.t, self.cond = x_t, t, cond
        return torch.ones_like(x_t)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_training_loss_target_equals_diffusers(prediction_type):
    schedule = NoiseSchedule(1000, "cosine", prediction_type)
    theirs = diffusers_ddpm(schedule)
    x0, cond = random(6, 17, 20, seed=1), random(6, COND_DIM, seed=2)
    model = Recorder(torch.zeros(COND_DIM))
    loss = diffusion.training_loss(model, schedule, x0, cond, cond_drop_prob=0.0,
                                   generator=torch.Generator().manual_seed(3))
    # The same draws, in the documented order: t, then the noise.
    generator = torch.Generator().manual_seed(3)
    t = torch.randint(0, 1000, (6,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    assert torch.equal(model.t, t) and torch.equal(model.cond, cond)
    torch.testing.assert_close(model.x_t, theirs.add_noise(x0, noise, t))
    target = noise if prediction_type == "epsilon" else theirs.get_velocity(x0, noise, t)
    torch.testing.assert_close(loss, F.mse_loss(torch.ones_like(x0), target))


def test_condition_dropout_replaces_conditions_by_the_null():
    null = torch.full((COND_DIM,), 7.0)
    model, x0 = Recorder(null), torch.zeros(2000, 1, 4)
    cond = random(2000, 3, COND_DIM, seed=1)
    diffusion.training_loss(model, NoiseSchedule(100), x0, cond, model.null_condition, cond_drop_prob=0.3,
                            generator=torch.Generator().manual_seed(0))
    dropped = (model.cond == 7.0).all(dim=(1, 2))
    kept = (model.cond == cond).all(dim=(1, 2))
    assert torch.all(dropped ^ kept)  # every row is either its own condition or entirely the null
    assert 0.27 < dropped.float().mean() < 0.33
    for p, fraction in [(0.0, 0.0), (1.0, 1.0)]:
        diffusion.training_loss(model, NoiseSchedule(100), x0, cond, model.null_condition, cond_drop_prob=p)
        assert (model.cond == 7.0).all(dim=(1, 2)).float().mean() == fraction
    with pytest.raises(ValueError, match="cond_drop_prob"):
        diffusion.training_loss(model, NoiseSchedule(100), x0, cond, model.null_condition, cond_drop_prob=1.5)
    with pytest.raises(ValueError, match="pass null_condition"):
        diffusion.training_loss(model, NoiseSchedule(100), x0, cond, cond_drop_prob=0.1)


def test_full_dropout_trains_the_model_behind_cond_none():
    # Dropping every condition gives the same loss as cond=None (float64: see test_unet's null test).
    model = tiny_model().double()
    schedule, x0 = NoiseSchedule(1000), random(*SHAPE, seed=1).double()
    cond = random(SHAPE[0], 3, COND_DIM, seed=2).double()
    dropped = diffusion.training_loss(model, schedule, x0, cond, model.null_condition, 1.0,
                                      generator=torch.Generator().manual_seed(0))
    unconditional = diffusion.training_loss(model, schedule, x0, None, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(dropped, unconditional, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- errors


def test_clear_errors():
    with pytest.raises(ValueError, match="squaredcos|unknown beta_schedule"):
        NoiseSchedule(1000, "squaredcos")
    with pytest.raises(ValueError, match="unknown prediction_type"):
        NoiseSchedule(1000, prediction_type="sample")
    with pytest.raises(ValueError, match="num_inference_steps"):
        diffusion.ddim_timesteps(1000, 0)
    model = tiny_model()
    with pytest.raises(ValueError, match="needs a condition"):
        diffusion.ddim_sample(model, NoiseSchedule(10), SHAPE, None, 2, guidance_scale=2.0, progress=False)
    with pytest.raises(ValueError, match="rows"):
        diffusion.ddim_sample(model, NoiseSchedule(10), SHAPE, random(3, 2, COND_DIM), 2, progress=False)
