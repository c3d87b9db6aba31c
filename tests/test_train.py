"""The robust trainer: the plain loop's steps, exact resume, crash safety, clear errors, 2 processes = 1 process.

Every run here trains the real UNet1D with the training step of method/loop.py on the tiny
synthetic EEG world, conditioned through a randomly initialised CLIP saved to a
folder (the same loading path as a hub id; tiny, so that runs take seconds).
"""

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from i2b_minimal import checkpoint, clip, data, diffusion, export, features, loop, train, unet
from i2b_minimal.datasets import safe_pickle
from i2b_minimal.train import TrainConfig

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = tmp_path_factory.mktemp("random-clip")
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    clip.image_processor_class()(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def make_config(root, encoder, out, **changes) -> TrainConfig:
    settings = dict(data_root=str(root), encoder=str(encoder), base_channels=16, steps=8, batch_size=8, lr=1e-3,
                    warmup_steps=3, checkpoint_every=4, output_dir=str(out))
    return TrainConfig(**{**settings, **changes})


@contextlib.contextmanager
def one_thread():
    """Run in-process training on one thread, as the subprocesses do (OMP_NUM_THREADS=1).

    The CPU kernels then sum in the same order on both sides. With 2 threads the gradients round differently
    (~1e-6 relative, ~1e-8 absolute), and AdamW's first step, lr g / (|g| + eps), makes that a 1% different step
    where |g| is near eps = 1e-8: weights end up ~3e-5 apart, which would hide nothing but fail a 1e-5 check.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def weights(folder, name="model"):
    return load_file(folder / f"{name}.safetensors")


def assert_same_weights(a: dict, b: dict, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


# ----------------------------------------------------------------------------- the parts


def test_ema_follows_the_reference_recursion():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = train.EMA(model, decay=0.9)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(1, 30):
        with torch.no_grad():
            for p in model.parameters():
                # Steps of 0.1 keep the weights near 1, where float32 rounding of lerp against the written-out
                # recursion stays below 5e-7 (2000 seeds); unit steps let it reach 3e-6 and failed 8% of seeds.
                p.add_(0.1 * torch.randn_like(p))
        ema.update(model, step)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = {k: decay * expected[k] + (1 - decay) * v for k, v in model.state_dict().items()}
    assert_same_weights(ema.shadow, expected, atol=1e-6)
    assert ema.decay_at(1) == pytest.approx(2 / 11) and ema.decay_at(10_000) == 0.9


def test_learning_rate_warms_up_then_follows_the_cosine():
    config = TrainConfig(steps=110, warmup_steps=10, lr_schedule="cosine")
    factors = [train.learning_rate_factor(s, config) for s in range(110)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == 1.0 and factors[60] == pytest.approx(0.5)
    assert factors[109] == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert train.learning_rate_factor(100, dataclasses.replace(config, lr_schedule="constant")) == 1.0


def test_signals_are_standardised_per_channel_and_map_back(tiny_eeg_root, clip_dir):
    config = make_config(tiny_eeg_root, clip_dir, "unused", trials="mean")
    prepared = train.prepare_data(config, progress=False)
    brain = data.load_things_eeg2(tiny_eeg_root, subject=1, split="train")
    scaled = np.stack([prepared.dataset[i][1].numpy() for i in range(len(prepared.dataset))])
    np.testing.assert_allclose(scaled.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=(0, 2)), 1, atol=1e-4)
    np.testing.assert_allclose(export.to_data_units(scaled, prepared.info), brain.mean_over_repetitions(), atol=1e-4)
    tokens, _ = features.encode_dataset(clip.ImageEncoder(str(clip_dir), progress=False), brain.image_paths,
                                    tiny_eeg_root / "features", progress=False)
    torch.testing.assert_close(prepared.dataset[5][0], tokens[5])  # cross-attention reads the token sequence
    assert prepared.info["cond_dim"] == 32 and prepared.info["n_channels"] == 17


# The options of `i2b train` before they were generated from TrainConfig: each keeps its name and meaning.
FIRST_TRAIN_OPTIONS = ["data-root", "modality", "subject", "encoder", "conditioning", "base-channels", "trials", "steps",
                       "batch-size", "lr", "lr-schedule", "warmup-steps", "weight-decay", "grad-clip", "ema-decay",
                       "cond-drop-prob", "num-train-timesteps", "beta-schedule", "prediction-type",
                       "gradient-accumulation-steps", "checkpoint-every", "keep-checkpoints", "output-dir", "seed",
                       "device"]


def other_value(field, default):
    """A valid value of a TrainConfig field other than ``default``, as a command-line word and as the field holds it."""
    if field.metadata["choices"]:
        value = next(c for c in field.metadata["choices"] if c != default)
        return value, value
    if isinstance(default, bool):
        return None, not default
    if field.name in ("channel_mults", "attention_levels"):
        return "1,3", (1, 3)
    if field.name == "subjects":
        return "2-4", (2, 3, 4)
    if field.name == "key_value_heads":  # default None: one per head; 2 divides the 4 heads
        return "2", 2
    if isinstance(default, float):  # inside its valid range: halfway to its upper bound, if it has one
        value = (default + field.metadata["bounds"].high) / 2 if field.metadata["bounds"].high else default + 3
        return str(value), value
    if isinstance(default, int):  # U-Net widths, heads and groups stay divisible into each other when doubled
        value = default * 2 if field.metadata["network"] else default + 3
        return str(value), value
    return "elsewhere", "elsewhere"


def test_every_config_field_is_an_option_of_i2b_train():
    from i2b_minimal import cli

    base = cli.config_from_args(cli.build_parser().parse_args(["train"]))
    assert base == (TrainConfig().fast_mode() if os.environ["I2B_FAST"] == "1" else TrainConfig())
    for field in dataclasses.fields(TrainConfig):
        word, value = other_value(field, getattr(base, field.name))
        flag = field.name.replace("_", "-")
        argv = ["train", f"--{flag}", word] if word is not None else ["train", f"--{'' if value else 'no-'}{flag}"]
        config = cli.config_from_args(cli.build_parser().parse_args(argv))
        assert config == dataclasses.replace(base, **{field.name: value}), argv
    options = {f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(TrainConfig)}
    options |= {alias for f in dataclasses.fields(TrainConfig) for alias in f.metadata["aliases"]}
    assert options >= {f"--{name}" for name in FIRST_TRAIN_OPTIONS}
    # The old --subject still names one subject; --subjects takes several, with ranges.
    assert cli.config_from_args(cli.build_parser().parse_args(["train", "--subject", "3"])).subjects == (3,)
    assert cli.config_from_args(cli.build_parser().parse_args(["train", "--subjects", "1-3,5"])).subjects == \
        (1, 2, 3, 5)


def test_train_options_carry_the_config_help_and_choices_and_cost_i2b_help_no_torch(capsys, monkeypatch):
    from i2b_minimal import cli

    monkeypatch.setenv("COLUMNS", "400")  # one line per option: the help texts stay whole
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    assert "--conditioning {" + ",".join(unet.CONDITIONING_MODES) + "}" in text
    assert "--self-attention, --no-self-attention" in text
    assert all(f.metadata["help"] in text for f in dataclasses.fields(TrainConfig))
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--conditioning", "film"])
    assert "invalid choice: 'film'" in capsys.readouterr().err
    code = "import sys; from i2b_minimal.app import cli; cli.build_parser().format_help(); print('torch' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", code], env=SUBPROCESS_ENV, capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"


def test_config_checks_its_choices_and_survives_json():
    with pytest.raises(ValueError, match=r"conditioning='film' is not one of \('cross_attention'"):
        TrainConfig(conditioning="film")
    with pytest.raises(ValueError, match="lr_schedule='linear'"):
        TrainConfig(lr_schedule="linear")
    config = TrainConfig(channel_mults=(1, 2), attention_levels=(1,))
    assert TrainConfig(**json.loads(json.dumps(dataclasses.asdict(config)))) == config  # lists back to tuples
    assert config.unet_kwargs()["channel_mults"] == (1, 2) and "steps" not in config.unet_kwargs()


def test_the_unet_architecture_is_set_by_the_run(tiny_eeg_root, clip_dir, tmp_path):
    architecture = dict(channel_mults=(1, 2), layers_per_level=1, attention_levels=(1,), self_attention=False,
                        num_heads=2, groups=4, dropout=0.1)
    config = make_config(tiny_eeg_root, clip_dir, tmp_path, steps=1, checkpoint_every=1, **architecture)
    result = train.train(config, progress=False)
    model, _, meta = export.load_trained(result.model_dir)
    assert {name: getattr(model.config, name) for name in architecture} == architecture
    assert model.mid.self_attention is None and len(model.down[0].blocks) == 1 and len(model.down) == 2
    saved = json.loads((result.model_dir / "config.json").read_text())  # what UNet1D.from_pretrained reads
    assert (saved["channel_mults"], saved["num_heads"], saved["self_attention"]) == ([1, 2], 2, False)
    assert meta["config"]["groups"] == 4
    with pytest.raises(checkpoint.CheckpointError, match="num_heads=2, but this run asks for 4"):
        train.train(dataclasses.replace(config, num_heads=4, steps=2), resume=True, progress=False)


# ----------------------------------------------------------------------------- the plain loop inside


def test_the_trainer_takes_the_steps_of_the_plain_loop(tiny_eeg_root, clip_dir, tmp_path):
    # Resume and checkpoints off; EMA decay 0, so that the exported weights are the raw ones (lerp_ with weight 1
    # returns its end exactly); a constant learning rate without warm-up, as the plain loop has no scheduler.
    # Single trials, condition dropout and extra high-noise steps: the dataset's draws and every random number of
    # a step are compared.
    config = make_config(tiny_eeg_root, clip_dir, tmp_path / "run", trials="single", steps=6, checkpoint_every=0,
                         ema_decay=0.0, warmup_steps=0, lr_schedule="constant", cond_drop_prob=0.5,
                         high_noise_fraction=0.5)
    with pytest.raises(ValueError, match="checkpoint_every=0 writes none"):
        train.train(config, stop_after=3, progress=False)
    with one_thread():  # both sides on one thread, so that the CPU kernels sum in the same order
        result = train.train(config, progress=False)
        prepared = train.prepare_data(config, progress=False)  # a fresh dataset: its single-trial draws start again
        batches = [train.global_batch(prepared.dataset, config.seed, step, config.batch_size)[:2]
                   for step in range(1, config.steps + 1)]
        torch.manual_seed(config.seed)  # the trainer draws its initial weights from the seed alone
        model = unet.UNet1D(n_channels=17, cond_dim=32, conditioning="cross_attention", base_channels=16)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        schedule = diffusion.NoiseSchedule(1000, "linear", "v_prediction")
        losses = loop.train_loop(model, optimizer, schedule, batches, config.cond_drop_prob, config.grad_clip,
                                 seed=config.seed, high_noise_fraction=config.high_noise_fraction)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert losses == result.losses  # bit for bit
    assert_same_weights(weights(result.model_dir), model.state_dict())
    # The comparison can fail: the same loop with other noise (another seed for its draws) ends elsewhere.
    torch.manual_seed(config.seed)
    other = unet.UNet1D(n_channels=17, cond_dim=32, conditioning="cross_attention", base_channels=16)
    loop.train_loop(other, torch.optim.AdamW(other.parameters(), lr=config.lr, weight_decay=config.weight_decay),
                    schedule, batches, config.cond_drop_prob, config.grad_clip, seed=config.seed + 1,
                    high_noise_fraction=config.high_noise_fraction)
    assert (other.input_conv.weight - model.input_conv.weight).abs().max() > 1e-4


# ----------------------------------------------------------------------------- resume


def test_half_plus_resumed_half_equals_the_whole_run(tiny_eeg_root, clip_dir, tmp_path):
    # Single trials, condition dropout, warm-up and cosine: every source of randomness and state is exercised.
    config = make_config(tiny_eeg_root, clip_dir, tmp_path / "whole", trials="single", steps=8, checkpoint_every=4)
    whole = train.train(config, progress=False)
    split = dataclasses.replace(config, output_dir=str(tmp_path / "split"))
    first = train.train(split, stop_after=4, progress=False)
    assert first.model_dir is None and len(first.losses) == 4
    second = train.train(split, resume=True, progress=False)
    assert second.start_step == 4
    assert second.losses == whole.losses  # bit-identical on the CPU
    for name in ("model", "ema", "optimizer"):
        assert_same_weights(weights(tmp_path / "whole/checkpoints/step-00000008", name),
                            weights(tmp_path / "split/checkpoints/step-00000008", name))
    assert_same_weights(weights(whole.model_dir), weights(second.model_dir))
    assert not torch.equal(weights(whole.model_dir)["input_conv.weight"],
                           weights(tmp_path / "whole/checkpoints/step-00000008")["input_conv.weight"])  # EMA != raw


def test_refuses_to_start_over_a_run_without_resume_or_overwrite(tiny_eeg_root, clip_dir, tmp_path):
    config = make_config(tiny_eeg_root, clip_dir, tmp_path, conditioning="none", steps=2, checkpoint_every=2)
    train.train(config, progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints.*--resume.*--overwrite"):
        train.train(config, progress=False)
    assert train.train(config, overwrite=True, progress=False).start_step == 0


def test_sigkill_loses_only_the_steps_after_the_last_checkpoint(tiny_eeg_root, clip_dir, tmp_path):
    run = tmp_path / "killed"
    command = [sys.executable, "-m", "i2b_minimal.cli", "train", "--data-root", str(tiny_eeg_root), "--encoder",
               str(clip_dir), "--base-channels", "16", "--batch-size", "8", "--lr", "1e-3", "--warmup-steps", "2",
               "--lr-schedule", "constant", "--steps", "100000", "--checkpoint-every", "3", "--output-dir", str(run)]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(command, env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 180
            while checkpoint.latest_checkpoint(run / "checkpoints") is None:
                assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.05)
            time.sleep(random.uniform(0.0, 1.0))  # a random later step, possibly in the middle of a save
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    saved = checkpoint.latest_checkpoint(run / "checkpoints")
    _, state = checkpoint.load_checkpoint(saved)  # what survived is complete and verified
    at = state["step"]
    assert not (run / "model").exists()

    config = make_config(tiny_eeg_root, clip_dir, run, warmup_steps=2, lr_schedule="constant",
                         steps=at + 3, checkpoint_every=3)
    with one_thread():  # as the killed run had
        resumed = train.train(config, resume=True, progress=False)
        reference = train.train(dataclasses.replace(config, output_dir=str(tmp_path / "uninterrupted")),
                                progress=False)
    assert resumed.start_step == at and resumed.losses[:at] == state["losses"]
    np.testing.assert_allclose(resumed.losses, reference.losses, rtol=1e-5)
    assert_same_weights(weights(resumed.model_dir), weights(reference.model_dir), atol=1e-5)


# ----------------------------------------------------------------------------- faults


def test_damaged_checkpoint_is_named_and_the_previous_one_is_intact(tiny_eeg_root, clip_dir, tmp_path):
    config = make_config(tiny_eeg_root, clip_dir, tmp_path, conditioning="none", steps=4, checkpoint_every=2)
    train.train(config, progress=False)
    previous, newest = checkpoint.list_checkpoints(tmp_path / "checkpoints")
    before = {f.name: f.read_bytes() for f in previous.iterdir()}
    model_file = newest / "model.safetensors"
    intact = model_file.read_bytes()

    model_file.write_bytes(intact[: len(intact) // 2])  # truncated
    with pytest.raises(checkpoint.CheckpointError, match=f"{model_file}.*truncated or corrupt.*{previous}"):
        train.train(dataclasses.replace(config, steps=6), resume=True, progress=False)
    flipped = bytearray(intact)
    flipped[-5] ^= 0xFF  # one bit pattern in the weights, the header still parses
    model_file.write_bytes(bytes(flipped))
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt"):
        checkpoint.load_checkpoint(newest)
    (newest / "state.json").write_text('{"step": 4, "fil')
    with pytest.raises(checkpoint.CheckpointError, match="state.json is truncated or corrupt"):
        checkpoint.load_checkpoint(newest)

    assert {f.name: f.read_bytes() for f in previous.iterdir()} == before
    checkpoint.load_checkpoint(previous)
    shutil.rmtree(newest)  # the way out the message gives
    partial = tmp_path / "checkpoints" / ".step-00000004.killed"  # what a kill during a save leaves
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    resumed = train.train(dataclasses.replace(config, steps=6), resume=True, progress=False)
    assert resumed.start_step == 2 and len(resumed.losses) == 6 and not partial.exists()


def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tiny_eeg_root, clip_dir, tmp_path,
                                                                       monkeypatch):
    real_loss, calls = diffusion.training_loss, []

    def loss_that_fails_at_step_5(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 5 else loss

    monkeypatch.setattr(diffusion, "training_loss", loss_that_fails_at_step_5)
    config = make_config(tiny_eeg_root, clip_dir, tmp_path, steps=8, checkpoint_every=3)
    good = tmp_path / "checkpoints" / "step-00000003"
    with pytest.raises(train.NonFiniteLossError, match=f"nan at step 5.*last good checkpoint is {good}"):
        train.train(config, progress=False)
    assert checkpoint.list_checkpoints(tmp_path / "checkpoints") == [good]
    _, state = checkpoint.load_checkpoint(good)
    assert state["step"] == 3 and all(math.isfinite(x) for x in state["losses"])
    assert not (tmp_path / "model").exists()


def test_wrong_data_conditioning_or_encoder_is_refused(tiny_eeg_root, clip_dir, tmp_path):
    config = make_config(tiny_eeg_root, clip_dir, tmp_path / "run", steps=2, checkpoint_every=2)
    result = train.train(config, progress=False)
    eeg = data.load_things_eeg2(tiny_eeg_root, subject=1, split="test")
    encoder = clip.ImageEncoder(str(clip_dir), progress=False)
    model, schedule, meta = export.load_trained(result.model_dir, data=eeg, encoder=encoder)
    assert model.config.conditioning == "cross_attention" and schedule.num_train_timesteps == 1000

    meg = dataclasses.replace(eeg, signals=np.zeros((eeg.n_images, 1, 271, 281), np.float32),
                              ch_names=[f"MLC{i:02d}" for i in range(271)], times=np.arange(281) / 200,
                              dataset="things-meg")
    with pytest.raises(ValueError, match=r"17 channels x 100 samples.*\(things-meg\) has 271 x 281"):
        export.load_trained(result.model_dir, data=meg)
    with pytest.raises(ValueError, match="conditioning='cross_attention', but 'concat' was asked for"):
        export.load_trained(result.model_dir, conditioning="concat")
    other = tmp_path / "other-clip"
    shutil.copytree(clip_dir, other)
    state = load_file(other / "model.safetensors")
    state["visual_projection.weight"] = state["visual_projection.weight"] + 1
    from safetensors.torch import save_file
    save_file(state, other / "model.safetensors")
    with pytest.raises(ValueError, match="features of another encoder mean nothing"):
        export.load_trained(result.model_dir, encoder=clip.ImageEncoder(str(other), progress=False))

    with pytest.raises(checkpoint.CheckpointError, match="conditioning='cross_attention', but this run asks for 'add'"):
        train.train(dataclasses.replace(config, conditioning="add", steps=4), resume=True, progress=False)
    cropped = _copy_with_fewer_samples(tiny_eeg_root, tmp_path / "cropped", n_times=80)
    with pytest.raises(ValueError, match="17 channels x 100 samples, but the data .* has 17 x 80"):
        train.train(dataclasses.replace(config, data_root=str(cropped), steps=4), resume=True, progress=False)


def test_damaged_exported_model_is_named(tiny_eeg_root, clip_dir, tmp_path):
    config = make_config(tiny_eeg_root, clip_dir, tmp_path, conditioning="none", steps=1, checkpoint_every=1)
    model_dir = train.train(config, progress=False).model_dir
    with pytest.raises(FileNotFoundError, match="meta.json is missing"):
        export.load_trained(tmp_path)
    weights_file = model_dir / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"{weights_file} is truncated or corrupt"):
        export.load_trained(model_dir)


def _copy_with_fewer_samples(root, out, n_times):
    """The same images with every EEG epoch cut to its first ``n_times`` samples."""
    shutil.copytree(root / "image_set", out / "image_set")
    for word in ("training", "test"):
        source = root / "preprocessed_data" / "sub-01" / f"preprocessed_eeg_{word}.npy"
        record = safe_pickle.load_npy(source).item()
        record["preprocessed_eeg_data"] = record["preprocessed_eeg_data"][..., :n_times]
        record["times"] = record["times"][:n_times]
        target = out / "preprocessed_data" / "sub-01" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, record, allow_pickle=True)
    return out


# ----------------------------------------------------------------------------- many processes


def test_two_processes_equal_one_process_with_the_same_global_batch(tiny_eeg_root, clip_dir, tmp_path):
    # torchrun starts 2 CPU processes; Accelerate finds them (gloo) and wraps the model in DDP.
    # The 1-process reference cuts the same global batch of 8 into the same 2 shards by gradient accumulation.
    common = ["--data-root", str(tiny_eeg_root), "--encoder", str(clip_dir), "--base-channels", "16",
              "--batch-size", "8", "--steps", "4", "--warmup-steps", "1", "--lr", "1e-3", "--checkpoint-every", "4",
              "--trials", "single"]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29500 + os.getpid() % 1000), "-m", "i2b_minimal.cli", "train", *common,
                          "--output-dir", str(tmp_path / "two")],
                         env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    config = make_config(tiny_eeg_root, clip_dir, tmp_path / "one", steps=4, warmup_steps=1, checkpoint_every=4,
                         trials="single", gradient_accumulation_steps=2)
    with one_thread():  # as each of the 2 processes has
        one = train.train(config, progress=False)

    meta = json.loads((tmp_path / "two/model/meta.json").read_text())
    assert meta["training"]["processes"] == 2
    _, state = checkpoint.load_checkpoint(tmp_path / "two/checkpoints/step-00000004")
    np.testing.assert_allclose(state["losses"], one.losses, rtol=1e-6)  # float32 vs float64 mean of the 2 shards
    # Then the runs agree to the last bit: DDP's mean of 2 gradients, (g0 + g1) / 2, and accumulating the gradients
    # of loss / 2 differ only by exact scalings by 2. 1e-6 is a margin far below one AdamW step (~lr = 1e-3).
    step4 = "checkpoints/step-00000004"
    assert_same_weights(weights(tmp_path / "two" / step4), weights(tmp_path / "one" / step4), atol=1e-6)
    assert_same_weights(weights(tmp_path / "two/model"), weights(one.model_dir), atol=1e-6)
    # The tolerance can tell runs apart: one shard of 8 (other noise draws) ends ~1e-3 away, 1000x the tolerance.
    unsharded = train.train(dataclasses.replace(config, output_dir=str(tmp_path / "unsharded"),
                                                gradient_accumulation_steps=1), progress=False)
    difference = weights(unsharded.model_dir)["input_conv.weight"] - weights(one.model_dir)["input_conv.weight"]
    assert difference.abs().max() > 1e-3
