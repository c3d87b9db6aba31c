"""The notebooks' exercise checks: each accepts the solution, rejects a wrong answer, and waits for None.

Where an expected answer is computed (not a fact about a dataset), it is also
checked against an independent reference: the library's own model, diffusers'
scheduler, or a transformers vision transformer.
"""

import pytest
import torch

from i2b_minimal.exercises import NOT_ANSWERED, nb00, nb01, nb02, nb03, nb04, nb05


def test_unanswered_prints_and_returns_none_which_a_notebook_does_not_display(capsys):
    assert nb03.check_attention_shape(None) is None
    assert NOT_ANSWERED in capsys.readouterr().out


@pytest.mark.parametrize("check, answers", [
    (nb00.check_signal_shapes, (None, None)),
    (nb00.check_signal_shapes, ((17, 100), None)),
    (nb01.check_repetitions_to_double_snr, (None,)),
    (nb01.check_contralateral, (None,)),
    (nb02.check_token_count, (65, None)),
    (nb03.check_attention_shape, (None,)),
])
def test_notebooks_00_to_03_wait_for_an_answer(capsys, check, answers):
    assert check(*answers) is None
    out = capsys.readouterr().out
    assert out.strip() == NOT_ANSWERED  # one line, no verdict and no hint yet


# -- nb00 ---------------------------------------------------------------------------------------------


def test_nb00_signal_shapes(capsys):
    assert nb00.check_signal_shapes((17, 100), [271, 281])
    assert "Right" in capsys.readouterr().out
    assert not nb00.check_signal_shapes((100, 17), (271, 281))
    assert not nb00.check_signal_shapes((17, 100), (271, 280))
    assert "Hint" in capsys.readouterr().out
    assert not nb00.check_signal_shapes((17, 100), None)


def test_nb00_eeg_shape_matches_the_synthetic_data(tiny_eeg_root):
    from i2b_minimal import data

    bd = data.load_things_eeg2(tiny_eeg_root, subject=1, split="test")
    assert bd.signals.shape[2:] == nb00.EEG_SHAPE


# -- nb01 ---------------------------------------------------------------------------------------------


def test_nb01_repetitions(capsys):
    assert nb01.check_repetitions_to_double_snr(4)
    assert capsys.readouterr().out.startswith("Right!")
    assert not nb01.check_repetitions_to_double_snr(2)
    assert "Hint" in capsys.readouterr().out
    assert not nb01.check_repetitions_to_double_snr("4")


def test_nb01_averaging_four_repetitions_doubles_the_snr_of_the_simulated_data(tiny_eeg_root):
    import numpy as np

    from i2b_minimal import data, synthetic

    test = data.load_things_eeg2(tiny_eeg_root, subject=1, split="test")
    truth = synthetic.load_ground_truth(tiny_eeg_root, 1, test.image_paths)
    noise_rms = {n: np.sqrt(np.mean([(test.signals[:, start:start + n].mean(axis=1) - truth) ** 2
                                     for start in range(0, test.n_repetitions - n + 1, n)])) for n in (1, 4)}
    assert noise_rms[1] / noise_rms[4] == pytest.approx(2.0, rel=0.1)


def test_nb01_contralateral(capsys):
    assert nb01.check_contralateral("right")
    assert nb01.check_contralateral("Right hemisphere")
    assert capsys.readouterr().out.startswith("Right!")
    assert not nb01.check_contralateral("left")
    assert "Hint" in capsys.readouterr().out


def test_nb01_left_pictures_drive_the_right_hemisphere_of_the_simulated_brain(tiny_eeg_root):
    from i2b_minimal import data, synthetic

    train = data.load_things_eeg2(tiny_eeg_root, subject=1, split="train")
    truth = synthetic.load_ground_truth(tiny_eeg_root, 1, train.image_paths)
    table = synthetic.load_captions(tiny_eeg_root)
    positions = {(tiny_eeg_root / path).resolve(): where for path, where in zip(table.image_path, table.position)}
    left = [synthetic.horizontal_side(positions[p.resolve()]) == -1 for p in train.image_paths]
    p1 = truth[left][:, :, list(train.times.round(2)).index(0.1)].mean(axis=0)
    odd = [i for i, name in enumerate(train.ch_names) if name[-1] in "13579"]  # 10-20: odd = left hemisphere
    even = [i for i, name in enumerate(train.ch_names) if name[-1] in "2468"]
    assert any(left) and p1[even].mean() > p1[odd].mean()


# -- nb02 ---------------------------------------------------------------------------------------------


def test_nb02_token_count():
    from i2b_minimal.tiny_clip import IMAGE_SIZE, PATCH_SIZE

    tiny = (IMAGE_SIZE // PATCH_SIZE) ** 2 + 1
    assert nb02.check_token_count(tiny, 257)
    assert not nb02.check_token_count(tiny - 1, 257)  # forgot the class token
    assert not nb02.check_token_count(tiny, 256)


@pytest.mark.parametrize("image_size, patch_size", [(224, 14), (64, 8)])
def test_nb02_token_formula_matches_a_real_vit(image_size, patch_size):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(image_size=image_size, patch_size=patch_size, hidden_size=8, intermediate_size=8,
                              num_hidden_layers=1, num_attention_heads=2)
    with torch.no_grad():
        out = CLIPVisionModel(config)(pixel_values=torch.zeros(1, 3, image_size, image_size))
    assert out.last_hidden_state.shape[1] == nb02.vit_tokens(image_size, patch_size)


# -- nb03 ---------------------------------------------------------------------------------------------


def test_nb03_attention_shape():
    assert nb03.check_attention_shape((8, 4, 50, 65))
    assert nb03.check_attention_shape(torch.Size([8, 4, 50, 65]))
    assert not nb03.check_attention_shape((8, 4, 100, 65))
    assert not nb03.check_attention_shape((8, 50, 65))


def test_nb03_expected_shape_is_what_the_unet_returns():
    from i2b_minimal import unet

    torch.manual_seed(0)
    model = unet.UNet1D(17, cond_dim=128, channel_mults=(1, 2, 2))  # the notebook's question names its layout
    with torch.no_grad():
        _, maps = model(torch.randn(8, 17, 100), torch.zeros(8, dtype=torch.long), torch.randn(8, 65, 128),
                        return_attention=True)
    assert tuple(maps["down1"].shape) == nb03.EXPECTED


# -- nb04 ---------------------------------------------------------------------------------------------


def test_nb04_padded_length():
    assert nb04.check_padded_length(288)
    assert not nb04.check_padded_length(280)  # rounded down
    assert not nb04.check_padded_length(284)  # three levels, not four
    assert nb04.check_padded_length(284, channel_mults=(1, 2, 2))


def test_nb04_padding_matches_the_unet():
    from i2b_minimal import unet

    model = unet.UNet1D(271, cond_dim=16, base_channels=8, channel_mults=(1, 2, 2, 2), attention_levels=(1,))
    with torch.no_grad():
        out, maps = model(torch.randn(1, 271, 281), torch.zeros(1, dtype=torch.long), torch.randn(1, 3, 16),
                          return_attention=True)
    assert out.shape[-1] == 281
    assert maps["down1"].shape[2] * 2 == nb04.padded_length(281, 4)


# -- nb05 ---------------------------------------------------------------------------------------------


def test_nb05_half_signal_step():
    linear, cosine = nb05.half_signal_step("linear"), nb05.half_signal_step("cosine")
    assert nb05.check_half_signal_step(linear, cosine)
    assert not nb05.check_half_signal_step(linear + 1, cosine)  # counted from 1
    assert not nb05.check_half_signal_step(cosine, linear)


@pytest.mark.parametrize("ours, theirs", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_nb05_step_agrees_with_diffusers(ours, theirs):
    from diffusers import DDPMScheduler

    alphas_cumprod = DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs).alphas_cumprod
    expected = int(torch.nonzero(alphas_cumprod < 0.25)[0])
    assert nb05.half_signal_step(ours) == expected


@pytest.mark.parametrize("check, answers", [
    (nb04.check_padded_length, (None,)),
    (nb05.check_half_signal_step, (None, None)),
    (nb05.check_half_signal_step, (499, None)),
])
def test_notebooks_04_and_05_wait_for_an_answer(capsys, check, answers):
    assert check(*answers) is None
    assert capsys.readouterr().out.strip() == NOT_ANSWERED
