"""The commands people run: `i2b evaluate`, `i2b quickstart`, `i2b sample`, and what they say on bad input.

Every test goes through ``cli.main``, the function behind the ``i2b`` command,
so that what is checked is what a user types.
"""

import json

import pytest

from i2b_minimal import cli, pipeline, synthetic

METRIC_KEYS = {"mse", "pcc", "corr_across_images", "identification_2way", "identification_top1"}
# How far a fresh `i2b evaluate --checkpoint bundled` may land from the model card's numbers. Same data, same
# seeds: only floating-point summation order (thread count, CPU kind) differs, and 50 DDIM steps carry it a little.
TOLERANCE = {"mse": 0.002, "pcc": 0.01, "corr_across_images": 0.01, "identification_2way": 0.01,
             "identification_top1": 0.03}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def small_eeg_root(tmp_path_factory):
    """The `small` synthetic EEG world of the bundled model's card, subject 1 only (seconds to make)."""
    root = tmp_path_factory.mktemp("small") / "synthetic-eeg-small"
    return synthetic.make_dataset(root, modality="eeg", preset="small", seed=0, subjects=[1], progress=False)


def test_bundled_checkpoint_reproduces_its_model_card(small_eeg_root, capsys):
    card = json.loads((pipeline.BUNDLED_MODEL / "metrics.json").read_text())
    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", "bundled", "--data-root", small_eeg_root, "--json")
    assert code == 0
    fresh = json.loads(out)
    assert fresh["conditioning"] == card["conditioning"] == "cross_attention"
    assert (fresh["samples_per_image"], fresh["num_inference_steps"]) == (card["samples_per_image"],
                                                                         card["num_inference_steps"])
    for who in ("model", "ridge"):
        for key, tolerance in TOLERANCE.items():
            assert fresh[who][key] == pytest.approx(card[who][key], abs=tolerance), (who, key)
    assert fresh["noise_ceiling"] == pytest.approx(card["noise_ceiling"], abs=1e-6)
    assert fresh["true_noise_ceiling"] == pytest.approx(card["true_noise_ceiling"], abs=1e-6)


def test_quickstart_prints_one_json_object_and_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I2B_DATA_DIR", str(tmp_path / "data"))  # "from nothing": the world is made here
    code, out, _ = run_cli(capsys, "quickstart", "--json", "--out", tmp_path / "report")
    assert code == 0
    result = json.loads(out)  # the whole of stdout is one JSON object
    assert result["conditioning"] == "cross_attention"
    for who in ("model", "ridge"):
        assert METRIC_KEYS <= set(result[who])
        assert all(isinstance(result[who][key], float) for key in METRIC_KEYS)
    assert 0.5 <= result["ridge"]["identification_2way"] <= 1
    assert isinstance(result["noise_ceiling"], float)
    assert result["data_root"] == str(tmp_path / "data" / "synthetic-eeg-tiny")  # I2B_FAST=1: the tiny world

    report = tmp_path / "report"
    assert json.loads((report / "metrics.json").read_text()) == result
    assert {"erp.png", "topomaps.png"} <= set(result["figures"])
    for name in result["figures"]:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "topomaps.png" in (report / "README.md").read_text()


def test_sample_names_the_images_that_do_not_exist(tmp_path, capsys):
    code, out, err = run_cli(capsys, "sample", tmp_path / "cat.jpg", tmp_path / "dog.png", "--out", tmp_path / "x.npy")
    assert code == 1
    assert "2 image file(s) not found" in err and "cat.jpg" in err and "dog.png" in err
    assert not (tmp_path / "x.npy").exists()


def test_a_model_for_other_data_or_another_conditioning_is_refused(tiny_meg_root, tiny_eeg_root, capsys):
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", "bundled", "--data-root", tiny_meg_root, "--no-ridge")
    assert code == 1
    assert "17 channels x 100 samples, but the data (things-meg) has 271 x 281" in err

    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", "bundled", "--data-root", tiny_eeg_root,
                           "--conditioning", "concat", "--no-ridge")
    assert code == 1
    assert "conditioning='cross_attention', but 'concat' was asked for" in err


def test_evaluate_on_a_missing_data_root_says_how_to_make_it(tmp_path, capsys):
    missing = tmp_path / "synthetic-eeg-small"
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", "bundled", "--data-root", missing)
    assert code == 1
    assert f"dataset root {missing} does not exist" in err
    assert f"i2b data synth --modality eeg --preset small --subjects 1 --out {missing}" in err


def test_a_recorded_data_root_that_moved_is_found_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("I2B_DATA_DIR", str(tmp_path))
    meta = {"config": {"data_root": str(tmp_path / "elsewhere" / "synthetic-eeg-small")}}
    assert pipeline.training_root(meta) == tmp_path / "synthetic-eeg-small"
    (tmp_path / "elsewhere" / "synthetic-eeg-small").mkdir(parents=True)
    assert pipeline.training_root(meta) == tmp_path / "elsewhere" / "synthetic-eeg-small"


def test_sampling_settings_are_checked_and_keywords_change_single_fields():
    assert pipeline.sampling_settings(pipeline.EVALUATION_SAMPLING, seed=3) == pipeline.SamplingSettings(
        samples_per_image=4, seed=3)
    with pytest.raises(ValueError, match="sampler must be one of"):
        pipeline.sampling_settings(sampler="euler")
    with pytest.raises(ValueError, match="at least one sample per image"):
        pipeline.SamplingSettings(samples_per_image=0)
    with pytest.raises(TypeError, match="steps"):  # a misspelt field is an error, not ignored
        pipeline.generate("bundled", [__file__], steps=10)
