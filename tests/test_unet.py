"""The 1D U-Net: shapes for EEG and MEG, every conditioning mode, the null condition, saving, errors."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from i2b_minimal.method.recompute import norm_silu_conv
from i2b_minimal.unet import CONDITIONING_MODES, ResBlock, UNet1D, UNet1DConfig

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
    model = small_unet(channel_mults=(1, 2, 2), attention_levels=(1, 2))
    x, t, tokens = torch.randn(2, 17, 100), torch.tensor([5, 6]), torch.randn(2, 7, COND_DIM)
    out, maps = model(x, t, tokens, return_attention=True)
    # Asked for the weights, the layers run the written-out softmax; otherwise the fused kernel: same numbers.
    torch.testing.assert_close(out, model(x, t, tokens), rtol=1e-5, atol=1e-6)
    assert list(maps) == ["down1", "down2", "mid", "up2", "up1"]
    assert maps["down1"].shape == (2, 2, 50, 7) and maps["mid"].shape == (2, 2, 25, 7)
    for weights in maps.values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_default_layout_pads_eeg_to_104_and_attends_below_full_resolution():
    model = small_unet()  # the default channel_mults, four levels: 100 samples -> 104 -> 52 -> 26 -> 13
    _, maps = model(torch.randn(1, 17, 100), torch.tensor([5]), torch.randn(1, 7, COND_DIM), return_attention=True)
    assert {name: weights.shape[2] for name, weights in maps.items()} == {
        "down1": 52, "down2": 26, "down3": 13, "mid": 13, "up3": 13, "up2": 26, "up1": 52}


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


def test_keywords_are_the_config_fields_and_config_json_records_them_all(tmp_path):
    model = UNet1D(17, cond_dim=8, base_channels=16, channel_mults=[1, 2], num_heads=2)
    assert model.config == UNet1DConfig(17, cond_dim=8, base_channels=16, channel_mults=(1, 2), num_heads=2)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == json.loads(json.dumps(dataclasses.asdict(model.config)))  # defaults included
    with pytest.raises(TypeError, match="width"):
        UNet1D(17, cond_dim=8, width=16)


def test_a_config_from_before_shared_key_value_heads_loads_as_multi_head(tmp_path):
    # The bundled models' config.json has no key_value_heads: a key/value head per attention head.
    model = UNet1D(17, cond_dim=8, base_channels=16, channel_mults=[1, 2], num_heads=2)
    assert model.config.key_value_heads == 2
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["key_value_heads"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = UNet1D.from_pretrained(tmp_path)
    assert loaded.config == model.config
    shared = UNet1D(17, cond_dim=8, key_value_heads=1)  # multi-query: one key/value head for the 4 heads
    to_k = shared.down[1].cross_attention.attention.to_k
    assert to_k.weight.shape == (64 // 4, 128)
    with pytest.raises(ValueError, match="key_value_heads=3 must divide num_heads=4"):
        UNet1D(17, cond_dim=8, key_value_heads=3)


def test_weights_saved_with_the_condition_at_the_top_level_still_load():
    # The layout of models saved before ImageCondition had a module (the bundled model's): null_cond,
    # cond_norm.*, cond_proj.* beside input_conv.
    model = small_unet(conditioning="add")
    old_names = {key.removeprefix("condition."): value for key, value in model.state_dict().items()}
    assert {"null_cond", "cond_norm.weight", "cond_proj.weight"} <= set(old_names)
    fresh = small_unet(conditioning="add")
    torch.nn.init.zeros_(fresh.condition.cond_proj.weight)
    fresh.load_state_dict(old_names, strict=True)
    x, t, cond = torch.randn(2, 17, 30), torch.tensor([0, 999]), torch.randn(2, COND_DIM)
    assert torch.equal(fresh(x, t, cond), model(x, t, cond))


def test_res_block_is_ho_et_al_s_block_written_out():
    torch.manual_seed(0)
    block = ResBlock(8, 16, time_dim=12, groups=4, dropout=0.0)
    h, temb = torch.randn(3, 8, 10), torch.randn(3, 12)
    x = block.conv1(F.silu(F.group_norm(h, 4, block.norm1.weight, block.norm1.bias)))
    x = x + F.linear(F.silu(temb), block.time_proj.weight, block.time_proj.bias)[:, :, None]
    x = block.conv2(F.silu(F.group_norm(x, 4, block.norm2.weight, block.norm2.bias)))
    torch.testing.assert_close(block(h, temb), block.skip(h) + x)


def test_lean_norm_silu_conv_has_the_plain_gradients_and_keeps_only_its_input():
    torch.manual_seed(0)
    norm, conv = torch.nn.GroupNorm(4, 8).double(), torch.nn.Conv1d(8, 6, 3, padding=1).double()
    torch.nn.init.normal_(norm.weight), torch.nn.init.normal_(norm.bias)
    grad = torch.randn(3, 6, 11, dtype=torch.float64)

    def assert_plain_gradients(leaf, h):  # h: the unit's input, computed from the leaf tensor
        parameters = [leaf, norm.weight, norm.bias, conv.weight, conv.bias]
        out, plain = norm_silu_conv(h, norm, conv), conv(F.silu(norm(h)))
        assert torch.equal(out, plain)
        for lean, reference in zip(torch.autograd.grad(out, parameters, grad),
                                   torch.autograd.grad(plain, parameters, grad)):
            torch.testing.assert_close(lean, reference, rtol=1e-12, atol=1e-12)

    h = torch.randn(3, 8, 11, dtype=torch.float64, requires_grad=True)
    assert_plain_gradients(h, h)

    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        norm_silu_conv(h, norm, conv)
    feature_maps = [t for t in kept if t.shape == h.shape]
    assert len(feature_maps) == 1 and feature_maps[0] is h  # plain autograd keeps three such maps

    # A transposed input (the attention blocks' output layout) has the same gradients.
    base = torch.randn(3, 11, 8, dtype=torch.float64, requires_grad=True)
    assert_plain_gradients(base, base.transpose(1, 2))


def test_lean_path_steps_aside_for_dropout():
    torch.manual_seed(0)
    norm, conv, dropout = torch.nn.GroupNorm(2, 4), torch.nn.Conv1d(4, 4, 3, padding=1), torch.nn.Dropout(0.5)
    h = torch.randn(2, 4, 9, requires_grad=True)
    torch.manual_seed(1)
    out = norm_silu_conv(h, norm, conv, dropout)
    torch.manual_seed(1)
    assert torch.equal(out, conv(dropout(F.silu(norm(h)))))  # the same random mask: the plain composition ran
