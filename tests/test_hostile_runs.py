"""Careless runs (issue 13): no checkpoint is deleted unless asked, after everything else is checked; one run per
output folder; a resume must match the data; an unwritable output folder fails before the first step."""

import os
import shutil

import numpy as np
import pytest

from i2b_minimal import checkpoint, things_format, train
from i2b_minimal.datasets import safe_pickle
from i2b_minimal.training import run_folder
from i2b_minimal.training.config import TrainConfig


def tiny_run(root, out, **changes) -> TrainConfig:
    """A run of a few seconds: no image encoder, a narrow U-Net, a checkpoint every 2 steps."""
    settings = dict(data_root=str(root), conditioning="none", base_channels=8, channel_mults=(1, 2), groups=4,
                    steps=4, batch_size=4, warmup_steps=1, checkpoint_every=2, output_dir=str(out))
    return TrainConfig(**{**settings, **changes})


@pytest.fixture
def stopped_run(tmp_path, tiny_eeg_root):
    """A run stopped after step 2, with its checkpoint."""
    config = tiny_run(tiny_eeg_root, tmp_path / "run")
    train.train(config, stop_after=2, progress=False)
    assert checkpoint.latest_checkpoint(tmp_path / "run" / train.CHECKPOINT_DIR) is not None
    return config


def test_overwrite_with_a_wrong_data_root_deletes_nothing(stopped_run, tmp_path):
    import dataclasses

    typo = dataclasses.replace(stopped_run, data_root=str(tmp_path / "no-such-data"))
    with pytest.raises(FileNotFoundError, match="no-such-data"):
        train.train(typo, overwrite=True, progress=False)
    assert checkpoint.latest_checkpoint(tmp_path / "run" / train.CHECKPOINT_DIR).name == checkpoint.checkpoint_name(2)


def test_resume_and_overwrite_together_are_refused(stopped_run, tmp_path):
    with pytest.raises(ValueError, match="choose one"):
        train.train(stopped_run, resume=True, overwrite=True, progress=False)
    assert checkpoint.latest_checkpoint(tmp_path / "run" / train.CHECKPOINT_DIR) is not None


def test_resume_without_a_checkpoint_says_it_starts_at_step_0(tmp_path, tiny_eeg_root, capsys):
    train.train(tiny_run(tiny_eeg_root, tmp_path / "fresh", steps=1), resume=True, progress=False)
    assert "no checkpoint in" in capsys.readouterr().out


def test_a_second_run_into_a_busy_folder_gets_a_clear_message(tmp_path, tiny_eeg_root):
    from filelock import FileLock

    out = tmp_path / "busy"
    out.mkdir()
    with FileLock(out / run_folder.LOCK_FILE):  # as a run in another process holds it
        with pytest.raises(run_folder.RunFolderBusyError, match=f"another run is training into {out}"):
            train.train(tiny_run(tiny_eeg_root, out), progress=False)
    assert not (out / train.CHECKPOINT_DIR).exists()
    train.train(tiny_run(tiny_eeg_root, out, steps=1), progress=False)  # released: the folder is usable again


def test_resume_on_other_data_is_refused(stopped_run, tmp_path, tiny_eeg_root):
    import dataclasses

    other = tmp_path / "other"
    shutil.copytree(tiny_eeg_root, other, ignore=shutil.ignore_patterns("features"))
    path = things_format.eeg2_data_path(other, 1, "train")
    record = safe_pickle.load_npy(path).item()
    things_format.write_eeg2(other, 1, "train", record["preprocessed_eeg_data"][:, :, :, ::-1], record["ch_names"],
                             record["times"])
    with pytest.raises(ValueError, match="other data files than those in --data-root"):
        train.train(dataclasses.replace(stopped_run, data_root=str(other)), resume=True, progress=False)


def test_a_moved_copy_of_the_same_data_resumes(stopped_run, tmp_path, tiny_eeg_root):
    import dataclasses

    moved = tmp_path / "moved"
    shutil.copytree(tiny_eeg_root, moved, ignore=shutil.ignore_patterns("features"))
    result = train.train(dataclasses.replace(stopped_run, data_root=str(moved)), resume=True, progress=False)
    assert result.start_step == 2 and result.model_dir is not None


def test_a_changed_normalisation_is_refused_even_without_a_fingerprint():
    saved = {"normalisation": {"mean": [0.0], "std": [1.0]}}
    found = {"data_fingerprint": "ab" * 32, "normalisation": {"mean": [0.0], "std": [2.0]}}
    with pytest.raises(ValueError, match="other per-channel stds"):
        run_folder.check_same_data(saved, found, "ckpt")


def test_an_output_folder_behind_a_file_fails_before_the_data_is_read(tmp_path):
    (tmp_path / "a-file").write_text("x")
    config = tiny_run(tmp_path / "no-data-either", tmp_path / "a-file" / "run")
    with pytest.raises(PermissionError, match="cannot write to the output folder"):
        train.train(config, progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_fails_before_the_first_step(tmp_path, tiny_eeg_root):
    out = tmp_path / "read-only"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=f"cannot write to the output folder {out}"):
            train.train(tiny_run(tiny_eeg_root, out), progress=False)
    finally:
        out.chmod(0o700)


def test_the_fingerprint_sees_a_changed_byte_and_a_renamed_image(tmp_path):
    data, image = tmp_path / "data.npy", tmp_path / "a.png"
    np.save(data, np.zeros(10))
    before = run_folder.data_fingerprint([data], [image], tmp_path)
    np.save(data, np.ones(10))
    assert run_folder.data_fingerprint([data], [image], tmp_path) != before
    assert run_folder.data_fingerprint([data], [tmp_path / "b.png"], tmp_path) != \
        run_folder.data_fingerprint([data], [image], tmp_path)


# ----------------------------------------------------------------------------- an exported model's integrity


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_eeg_root):
    out = tmp_path_factory.mktemp("exported")
    return train.train(tiny_run(tiny_eeg_root, out, steps=1), progress=False).model_dir


@pytest.mark.parametrize("file, change", [
    ("config.json", lambda d: {**d, "num_heads": 1}),
    ("meta.json", lambda d: {**d, "schedule": {**d["schedule"], "prediction_type": "epsilon"}}),
    ("meta.json", lambda d: {**d, "normalisation": {**d["normalisation"], "std": [s * 2 for s in
                                                                                   d["normalisation"]["std"]]}}),
])
def test_a_changed_config_or_meta_is_refused(exported, tmp_path, file, change):
    import json

    from i2b_minimal import export

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    (model / file).write_text(json.dumps(change(json.loads((model / file).read_text()))))
    with pytest.raises(ValueError, match=rf"{model / file} was changed after export"):
        export.load_trained(model, device="cpu")


def test_a_model_without_its_integrity_record_is_refused(exported, tmp_path):
    from i2b_minimal import export

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    (model / export.INTEGRITY_FILE).unlink()
    with pytest.raises(ValueError, match="integrity.json is missing or corrupt"):
        export.load_trained(model, device="cpu")


def test_the_bundled_model_carries_its_record_and_loads():
    from i2b_minimal import export
    from i2b_minimal.app.pipeline.trained_model import BUNDLED_MODEL

    export.check_integrity(BUNDLED_MODEL)
    export.load_trained(BUNDLED_MODEL, device="cpu")
