"""The 1D U-Net: shapes for EEG and MEG, every conditioning mode, the null condition, saving, errors."""

import json

import pytest
import torch

from i2b_minimal.unet import CONDITIONING_MODES, UNet1D

COND_DIM = 24
SMALL = dict(base_channels=16, layers_per_level=1, num_heads=2)  # keeps every test in the seconds


def small_unet(n_channels=17, conditioning="cross_attention", **kwargs):
    torch.manual_seed(0)
    cond_dim = None if conditioning == "none" else COND_DIM
    return UNet1D(n_channels, cond_dim=cond_dim, conditioning=conditioning, **{**SMALL, **kwargs})


@pytest.mark.parametrize("conditioning", CONDITIONING_MODES)
@pytest.mark.parametrize("n_channels, length", [(17, 100), (271, 281)])  # THINGS-EEG2 and THINGS-MEG epochs
def test_output_shape_and_gradient_to_the_condition(conditioning, n_channels, length):
    model = small_unet(n_channels, conditioning)
    x, t = torch.randn(2, n_channels, length), torch.tensor([3, 700])
    tokens = torch.randn(2, 5, COND_DIM, requires_grad=True)
    out = model(x, t, tokens)
    assert out.shape == (2, n_channels, length)
    out.square().sum().backward()
    if conditioning == "none":
        assert tokens.grad is None  # the ablation's lower bound never looks at the image
    else:
        assert torch.isfinite(tokens.grad).all() and tokens.grad.abs().sum() > 0


@pytest.mark.parametrize("length", [1, 37, 100, 281])
def test_any_length_is_padded_and_cropped(length):
    model = small_unet(channel_mults=(1, 2, 2, 2))  # pads to a multiple of 8
    out = model(torch.randn(1, 17, length), torch.tensor([10]), torch.randn(1, COND_DIM))
    assert out.shape == (1, 17, length)


def test_default_size_for_eeg():
    for conditioning, cond_dim in [("cross_attention", 512), ("cross_attention", 1024), ("concat", 768), ("none", None)]:
        model = UNet1D(17, cond_dim=cond_dim, conditioning=conditioning)
        assert 1_000_000 <= model.num_parameters() <= 5_000_000
    assert f"{model.num_parameters():,}" in repr(model) and f"{model.num_parameters():,}" in model.summary()


@pytest.mark.parametrize("conditioning", ["cross_attention", "concat", "add"])
def test_null_condition_is_what_cond_none_means(conditioning):
    # In float64: in float32, mean-pooling 6 copies of the null (concat, add) or attending uniformly
    # over them (cross-attention) is not bit-exact, and the network turns that rounding into ~1e-6
    # differences in the output. In float64 they are ~1e-15, so a tight tolerance checks the meaning.
    model = small_unet(conditioning=conditioning).double()
    x, t = torch.randn(3, 17, 50, dtype=torch.float64), torch.tensor([1, 500, 999])
    unconditional = model(x, t, None)
    for like in (torch.randn(3, 6, COND_DIM, dtype=torch.float64), torch.randn(3, COND_DIM, dtype=torch.float64)):
        torch.testing.assert_close(model(x, t, model.null_condition(like)), unconditional, rtol=1e-12, atol=1e-12)
    real = model(x, t, torch.randn(3, COND_DIM, dtype=torch.float64))
    assert (real - unconditional).abs().max() > 1e-3  # a real image does change the output


def test_attention_maps_over_image_tokens():
    model = small_unet(attention_levels=(1, 2))
    x, t, tokens = torch.randn(2, 17, 100), torch.tensor([5, 6]), torch.randn(2, 7, COND_DIM)
    out, maps = model(x, t, tokens, return_attention=True)
    assert torch.equal(out, model(x, t, tokens))
    assert list(maps) == ["down1", "down2", "mid", "up2", "up1"]
    assert maps["down1"].shape == (2, 2, 50, 7) and maps["mid"].shape == (2, 2, 25, 7)
    for weights in maps.values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_overfits_one_conditioned_example():
    # One (x_t, t, image) -> noise pair, memorised: the loss must fall 10x (it passes /10 near step 40).
    model = small_unet(base_channels=32, layers_per_level=1, num_heads=4)
    generator = torch.Generator().manual_seed(0)
    x_t = torch.randn(1, 17, 100, generator=generator)
    target = torch.randn(1, 17, 100, generator=generator)
    t = torch.randint(0, 1000, (1,), generator=generator)
    cond = torch.randn(1, 5, COND_DIM, generator=generator, requires_grad=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(200):
        loss = (model(x_t, t, cond) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < losses[0] / 10, (losses[0], losses[-10:])
    assert cond.grad.abs().sum() > 0  # it learned with the image in the loop


def test_save_and_load_round_trip(tmp_path):
    model = small_unet(conditioning="concat", channel_mults=(1, 2))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert json.loads((tmp_path / "config.json").read_text())["conditioning"] == "concat"
    loaded = UNet1D.from_pretrained(tmp_path)
    assert loaded.config == model.config
    x, t, cond = torch.randn(2, 17, 30), torch.tensor([0, 999]), torch.randn(2, COND_DIM)
    assert torch.equal(loaded(x, t, cond), model(x, t, cond))


def test_clear_errors_on_bad_input():
    model = small_unet()
    x, t = torch.randn(2, 17, 100), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="n_channels=17"):
        model(torch.randn(2, 16, 100), t)
    with pytest.raises(ValueError, match="cond_dim=24"):
        model(x, t, torch.randn(2, 5, 23))
    with pytest.raises(ValueError, match="one step per signal"):
        model(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="unknown conditioning 'film'"):
        UNet1D(17, cond_dim=8, conditioning="film")
    with pytest.raises(ValueError, match="needs cond_dim"):
        UNet1D(17, conditioning="cross_attention")
    with pytest.raises(ValueError, match="divisible"):
        UNet1D(17, cond_dim=8, base_channels=20)
