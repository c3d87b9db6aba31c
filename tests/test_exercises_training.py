"""Check functions of notebooks 06 (training) and 07 (sampling and guidance): right, wrong, and not answered."""

import pytest
import torch

from i2b_minimal import diffusion, train, unet
from i2b_minimal.exercises import NOT_ANSWERED, nb06, nb07

# -- nb06 ---------------------------------------------------------------------------------------------


def test_nb06_learning_rate_accepts_the_warm_up_value_and_rejects_off_by_one():
    assert nb06.check_learning_rate(2.5e-4, step=49)  # default TrainConfig: lr 5e-4, 100 warm-up steps
    assert not nb06.check_learning_rate(2.45e-4, step=49)  # (step / warmup) instead of (step + 1) / warmup
    assert not nb06.check_learning_rate(5e-4, step=49)  # no warm-up
    assert not nb06.check_learning_rate("2.5e-4", step=49)


def test_nb06_learning_rate_follows_the_library_after_the_warm_up():
    config = train.TrainConfig(lr=1e-3, warmup_steps=10, steps=110)
    # Cosine decay after the warm-up: halfway through the remaining 100 steps the factor is 0.5.
    assert nb06.learning_rate(60, config) == pytest.approx(0.5e-3)
    assert nb06.check_learning_rate(0.5e-3, step=60, config=config)


def test_nb06_ema_ramp_end_is_the_first_step_at_full_decay():
    n = nb06.ema_ramp_end(0.999)
    assert n == 8990  # (1 + n) / (10 + n) >= 0.999  <=>  n >= 8990
    ema = train.EMA(torch.nn.Identity(), 0.999)
    assert ema.decay_at(n) >= 0.999 > ema.decay_at(n - 1)
    assert nb06.ema_ramp_end(0.9) == 80


def test_nb06_ema_ramp_end_check():
    assert nb06.check_ema_ramp_end(8990)
    assert not nb06.check_ema_ramp_end(1000)  # the averaging window 1 / (1 - decay), not the ramp
    assert not nb06.check_ema_ramp_end(8989)


def test_nb06_unanswered(capsys):
    assert not nb06.check_learning_rate(None)
    assert not nb06.check_ema_ramp_end(None)
    assert capsys.readouterr().out.count(NOT_ANSWERED) == 2


# -- nb07 ---------------------------------------------------------------------------------------------


def test_nb07_guided_value():
    assert nb07.check_guided_value(2.0)
    assert not nb07.check_guided_value(2.6)  # s * eps_cond + eps_uncond
    assert not nb07.check_guided_value(0.8)  # the conditional prediction alone


class _Affine(torch.nn.Module):
    """A stand-in denoiser whose output is its condition's mean, so guidance arithmetic is visible."""

    def __init__(self):
        super().__init__()
        self.null = torch.nn.Parameter(torch.tensor(0.2))

    def null_condition(self, like):
        return self.null.expand_as(like)

    def forward(self, x, t, cond):
        return torch.zeros_like(x) + cond.mean(dim=(1, 2))[:, None, None]


def test_nb07_guided_value_matches_the_library():
    model = _Affine()
    cond = torch.full((1, 3, 4), 0.8)  # eps_cond = 0.8, eps_uncond = the null's 0.2
    out = diffusion.guided_model_output(model, torch.zeros(1, 2, 5), 10, cond, guidance_scale=3.0)
    torch.testing.assert_close(out, torch.full((1, 2, 5), nb07.guided(0.8, 0.2, 3.0)))


def test_nb07_network_evaluations_check():
    assert nb07.check_network_evaluations(2000, 100)
    assert not nb07.check_network_evaluations(1000, 50)  # forgot the unconditional pass
    assert not nb07.check_network_evaluations(100, 2000)
    assert nb07.check_network_evaluations(1000, 50, guidance_scale=1.0)


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_nb07_network_evaluations_match_the_samplers(guidance_scale):
    """Count the signals the U-Net really sees, with a short schedule so that DDPM is quick."""
    model = unet.UNet1D(3, cond_dim=4, base_channels=8, channel_mults=(1, 2), num_heads=2).eval()
    schedule = diffusion.NoiseSchedule(num_train_timesteps=20)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    cond, shape = torch.randn(1, 2, 4), (1, 3, 16)
    diffusion.ddpm_sample(model, schedule, shape, cond, guidance_scale=guidance_scale, progress=False)
    assert sum(seen) == nb07.network_evaluations("ddpm", guidance_scale, num_train_timesteps=20)
    seen.clear()
    diffusion.ddim_sample(model, schedule, shape, cond, 5, guidance_scale=guidance_scale, progress=False)
    assert sum(seen) == nb07.network_evaluations("ddim", guidance_scale, num_inference_steps=5, num_train_timesteps=20)


def test_nb07_unanswered(capsys):
    assert not nb07.check_guided_value(None)
    assert not nb07.check_network_evaluations(None, 100)
    assert capsys.readouterr().out.count(NOT_ANSWERED) == 2
