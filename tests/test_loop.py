"""method/loop.py, Algorithm 1 on its own: it trains, and its randomness is a function of (seed, step, shard).

That the robust trainer takes exactly these steps is tests/test_train.py's
test_the_trainer_takes_the_steps_of_the_plain_loop.
"""

import torch

from i2b_minimal import diffusion, loop, unet

CHANNELS, LENGTH, CLASSES = 3, 32, 4


def batches(n_steps, batch_size=32, seed=0):
    """(cond, x0) pairs of a world with 4 pictures: picture k evokes a sine of k + 1 cycles on every channel."""
    generator = torch.Generator().manual_seed(seed)
    time_axis = torch.linspace(0, 1, LENGTH)
    for _ in range(n_steps):
        labels = torch.randint(0, CLASSES, (batch_size,), generator=generator)
        x0 = torch.sin(2 * torch.pi * (labels[:, None, None] + 1) * time_axis).expand(-1, CHANNELS, -1).clone()
        yield torch.nn.functional.one_hot(labels, CLASSES).float()[:, None, :], x0  # one image token each


def held_out_loss(model, schedule):
    """The loss on 256 unseen pairs, with the same draws of t and noise every time it is asked."""
    cond, x0 = next(batches(1, batch_size=256, seed=99))
    with torch.no_grad():
        return diffusion.training_loss(model, schedule, x0, cond, cond_drop_prob=0.0,
                                       generator=torch.Generator().manual_seed(1)).item()


def test_train_loop_trains():
    torch.manual_seed(0)
    model = unet.UNet1D(CHANNELS, cond_dim=CLASSES, base_channels=8, channel_mults=(1, 2), layers_per_level=1,
                        num_heads=2)
    schedule = diffusion.NoiseSchedule(1000, prediction_type="v_prediction")
    before = held_out_loss(model, schedule)
    losses = loop.train_loop(model, torch.optim.AdamW(model.parameters(), lr=3e-3), schedule, batches(60), seed=0)
    assert len(losses) == 60 and all(loss > 0 for loss in losses)
    # ~0.75 -> ~0.36 for seeds 0-3 (60 steps of 32); an untrained network stays at `before`.
    assert held_out_loss(model, schedule) < 0.6 * before


def test_every_step_and_shard_has_its_own_reproducible_randomness():
    def draws(seed, step, shard=0):
        return torch.randn(4, generator=loop.step_generator(seed, step, shard))

    assert torch.equal(draws(0, 7), draws(0, 7))  # whatever ran before
    distinct = [draws(0, 7), draws(0, 8), draws(1, 7), draws(0, 7, shard=1)]
    assert all(not torch.equal(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1:])


def test_a_step_cut_into_halves_accumulates_the_gradient_of_the_whole():
    torch.manual_seed(0)
    model = unet.UNet1D(CHANNELS, cond_dim=CLASSES, base_channels=8, channel_mults=(1, 2), layers_per_level=1,
                        num_heads=2).double()
    schedule = diffusion.NoiseSchedule(100)
    cond, x0 = (tensor.double() for tensor in next(batches(1, batch_size=8)))
    halves = [(slice(0, 4), 0), (slice(4, 8), 1)]
    for rows, shard in halves:  # what the trainer does with 2 micro-batches: weight 1/2 each
        loop.accumulate_gradient(model, schedule, cond[rows], x0[rows], model.null_condition, 0.5,
                                 loop.step_generator(0, 1, shard), weight=0.5)
    accumulated = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    losses = [diffusion.training_loss(model, schedule, x0[rows], cond[rows], model.null_condition, 0.5,
                                      loop.step_generator(0, 1, shard)) for rows, shard in halves]
    (sum(losses) / 2).backward()  # the mean loss over the batch, the same draws
    for name, p in model.named_parameters():
        torch.testing.assert_close(accumulated[name], p.grad, rtol=1e-12, atol=1e-12, msg=name)
