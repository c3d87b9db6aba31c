"""Hostile and careless settings (issue 13): every setting is checked when it is made, with a message that
names the option and its valid range; no NaN or untrained model passes as a result."""

import math

import pytest
import torch

from i2b_minimal import export
from i2b_minimal.app import cli
from i2b_minimal.app.pipeline import SamplingSettings
from i2b_minimal.training import checkpoint
from i2b_minimal.training.config import TrainConfig

NAN, INF = float("nan"), float("inf")

# (field, bad value, what the message must say): 23 cases.
BAD_TRAIN_SETTINGS = [
    ("ema_decay", NAN, r"--ema-decay \(ema_decay\) must be a finite number >= 0 and < 1 .*not nan"),
    ("ema_decay", 2.0, r"--ema-decay .* < 1"),
    ("ema_decay", 1.0, r"--ema-decay .* < 1"),
    ("warmup_steps", -3, r"--warmup-steps .* whole number >= 0"),
    ("steps", 0, r"--steps \(steps\) must be a whole number >= 1, not 0"),
    ("steps", 2.5, r"--steps .* whole number"),
    ("lr", NAN, r"--lr .* finite number > 0"),
    ("lr", INF, r"--lr .* finite number > 0"),
    ("lr", 0.0, r"--lr .* > 0"),
    ("batch_size", 0, r"--batch-size .* >= 1"),
    ("gradient_accumulation_steps", 0, r"--gradient-accumulation-steps .* >= 1"),
    ("checkpoint_every", -1, r"--checkpoint-every .* >= 0 \(0: no checkpoints"),
    ("keep_checkpoints", -1, r"--keep-checkpoints .* >= 0 \(0: keep every checkpoint\)"),
    ("weight_decay", -0.1, r"--weight-decay .* >= 0"),
    ("grad_clip", 0.0, r"--grad-clip .* > 0"),
    ("cond_drop_prob", 1.5, r"--cond-drop-prob .* <= 1"),
    ("dropout", NAN, r"--dropout .* finite"),
    ("num_heads", 0, r"--num-heads .* >= 1"),
    ("channel_mults", (1, 0), r"--channel-mults .* every item is a whole number >= 1"),
    ("seed", -1, r"--seed .* >= 0"),
    ("num_train_timesteps", 0, r"--num-train-timesteps .* >= 1"),
    ("output_dir", "", r"--output-dir \(output_dir\) must not be empty"),
    ("num_heads", 3, r"divisible by groups=8 and num_heads=3"),
]


@pytest.mark.parametrize("field, value, message", BAD_TRAIN_SETTINGS)
def test_a_bad_train_setting_is_refused_when_the_config_is_made(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_the_valid_range_is_in_the_help():
    import dataclasses

    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}
    assert "0: keep every checkpoint" in helps["keep_checkpoints"] and ">= 0 and < 1" in helps["ema_decay"]


@pytest.mark.parametrize("option, value, message", [
    ("guidance_scale", NAN, r"--guidance-scale .* finite number >= 0"),
    ("guidance_scale", INF, r"--guidance-scale .* finite"),
    ("num_inference_steps", 0, r"--steps \(num_inference_steps\) must be a whole number >= 1"),
    ("samples_per_image", 0, r"--samples-per-image .* >= 1"),
    ("batch_size", 0, r"--batch-size .* >= 1"),
    ("eta", 1.5, r"--eta \(eta\) must be a finite number >= 0 and <= 1 \(0: deterministic DDIM"),
    ("eta", -0.1, r"--eta \(eta\) must be a finite number >= 0"),
])
def test_a_bad_sampling_setting_is_refused(option, value, message):
    with pytest.raises(ValueError, match=message):
        SamplingSettings(**{option: value})


@pytest.mark.parametrize("argv, message", [
    (["train", "--ema-decay", "nan"], "--ema-decay (ema_decay) must be"),
    (["train", "--gradient-accumulation-steps", "0"], "--gradient-accumulation-steps"),
    (["train", "--checkpoint-every", "-5"], "--checkpoint-every"),
    (["train", "--batch-size", "0"], "--batch-size (batch_size) must be a whole number >= 1"),
    (["train", "--keep-checkpoints", "-1"], "--keep-checkpoints"),
    (["sample", "some.png", "--guidance-scale", "inf"], "--guidance-scale"),
])
def test_the_command_says_which_option_is_wrong(argv, message, capsys, tmp_path):
    argv = [*argv, "--output-dir", str(tmp_path / "run")] if argv[0] == "train" else argv
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_quickstart_with_zero_steps_prints_an_error_not_nan_json(capsys, tmp_path, tiny_eeg_root):
    assert cli.main(["quickstart", "--steps", "0", "--json", "--out", str(tmp_path), "--data-root",
                     str(tiny_eeg_root)]) == 1
    out, err = capsys.readouterr()
    assert "NaN" not in out and "--steps (steps) must be a whole number >= 1" in err


def test_a_model_with_nan_weights_is_not_exported(tmp_path):
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    model.save_pretrained = lambda folder: pytest.fail("wrote a NaN model")
    with pytest.raises(ValueError, match=r"not exporting .* NaN or Inf .*weight"):
        export.export_model(model, tmp_path / "model", {})
    assert not (tmp_path / "model").exists()


def test_keep_zero_keeps_every_checkpoint_and_negative_is_refused(tmp_path):
    tensors = {"model": {"w": torch.zeros(1)}}
    for step in (1, 2, 3):
        checkpoint.save_checkpoint(tmp_path, step, tensors, {}, keep=0)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [checkpoint.checkpoint_name(s) for s in (1, 2, 3)]
    with pytest.raises(ValueError, match="keep=-1"):
        checkpoint.save_checkpoint(tmp_path, 4, tensors, {}, keep=-1)
    assert len(checkpoint.list_checkpoints(tmp_path)) == 3  # nothing deleted, nothing written


# ----------------------------------------------------------------------------- per-image noise streams


@pytest.mark.parametrize("sampler, eta", [("ddim", 0.0), ("ddim", 1.0), ("ddpm", 0.0)])
def test_a_sample_depends_only_on_seed_image_and_sample_index(sampler, eta):
    """Sample j of image i is the same alone, with other images, and however the call is cut into batches;
    DDIM's fresh noise (eta > 0) comes from the same per-sample streams."""
    from i2b_minimal.app import pipeline

    model = pipeline.load_model("bundled", device="cpu", progress=False)
    if sampler == "ddpm":  # DDPM takes every training step: a 20-step schedule keeps the test short
        model.schedule = type(model.schedule)(20, model.schedule.beta_schedule, model.schedule.prediction_type)
    torch.manual_seed(1)
    cond = torch.randn(3, model.encoder.num_tokens, model.encoder.token_dim)
    options = dict(sampler=sampler, eta=eta, num_inference_steps=3, seed=7, samples_per_image=2, progress=False)
    together = torch.from_numpy(model.sample(cond, 3, batch_size=4, **options))  # a batch ends inside image 1
    at_once = torch.from_numpy(model.sample(cond, 3, **options))
    alone = torch.from_numpy(model.sample(cond[:1], 1, batch_size=1, **options))
    torch.testing.assert_close(alone[0], together[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(at_once, together, atol=1e-4, rtol=1e-4)
    assert (together[0, 0] - together[0, 1]).abs().max() > 0.1  # the two samples of an image draw other noise
    if eta:  # the setting reaches the sampler: the same x_T, other jumps
        deterministic = torch.from_numpy(model.sample(cond, 3, **{**options, "eta": 0.0}))
        assert (together - deterministic).abs().max() > 0.1
