"""The timestep distribution of training (method/timesteps.py): uniform by default, extra draws at high noise."""

import pytest
import torch

from i2b_minimal.method import diffusion, timesteps

T = 1000


def test_zero_fraction_is_ho_et_al_uniform_draw_with_the_same_random_numbers():
    drawn = timesteps.sample_timesteps(64, T, 0.0, torch.Generator().manual_seed(3))
    assert torch.equal(drawn, torch.randint(0, T, (64,), generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.9])
def test_draws_follow_the_mixture_and_still_reach_every_part_of_the_range(fraction):
    n = 400_000
    t = timesteps.sample_timesteps(n, T, fraction, torch.Generator().manual_seed(0))
    assert t.min() >= 0 and t.max() <= T - 1
    start = timesteps.high_noise_start(T)
    assert start == 900
    # P(t >= 900) = fraction + (1 - fraction) * 0.1; the binomial sd at n = 400,000 is below 0.0008.
    expected_high = fraction + (1 - fraction) * 0.1
    assert (t >= start).double().mean().item() == pytest.approx(expected_high, abs=0.004)
    # Below the band the draws stay uniform: each tenth of [0, 900) holds a ninth of them.
    low = t[t < start]
    counts = torch.bincount(low // 100, minlength=9).double() / len(low)
    assert torch.allclose(counts, torch.full((9,), 1 / 9, dtype=torch.float64), atol=0.005)
    # Within the band, uniform too (the two halves of [900, 1000) are equally likely).
    high = t[t >= start]
    assert (high >= 950).double().mean().item() == pytest.approx(0.5, abs=0.005)


def test_the_band_is_at_least_the_last_step_for_short_schedules():
    assert timesteps.high_noise_start(5) == 4
    assert (timesteps.sample_timesteps(1000, 5, 0.5, torch.Generator().manual_seed(1)) == 4).double().mean() > 0.5


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_fractions_outside_zero_to_one_are_refused_with_the_reason(fraction):
    with pytest.raises(ValueError, match=r"high_noise_fraction must lie in \[0, 1\)"):
        timesteps.sample_timesteps(8, T, fraction)


class _RecordsTimesteps(torch.nn.Module):
    """A stand-in network that remembers the steps the loss asked it about."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x_t, t, cond):
        self.seen.append(t.clone())
        return x_t * self.weight


def test_the_training_loss_draws_its_steps_from_the_mixture():
    schedule = diffusion.NoiseSchedule(T, "linear", "v_prediction")
    model = _RecordsTimesteps()
    x0 = torch.randn(4096, 2, 8)
    diffusion.training_loss(model, schedule, x0, None, cond_drop_prob=0.0,
                            generator=torch.Generator().manual_seed(0), high_noise_fraction=0.5)
    (t,) = model.seen
    assert (t >= 900).double().mean().item() == pytest.approx(0.55, abs=0.03)
    model.seen.clear()
    diffusion.training_loss(model, schedule, x0, None, cond_drop_prob=0.0, generator=torch.Generator().manual_seed(0))
    assert (model.seen[0] >= 900).double().mean().item() == pytest.approx(0.1, abs=0.02)
