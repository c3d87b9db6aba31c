"""The commands people run: `i2b evaluate`, `i2b quickstart`, `i2b sample`, and what they say on bad input.

Every test goes through ``cli.main``, the function behind the ``i2b`` command,
so that what is checked is what a user types.
"""

import json

import numpy as np
import pytest

from i2b_minimal import cli, pipeline, synthetic
from i2b_minimal.app import report
from test_evaluate_json import assert_evaluation_shape  # tests/ is on sys.path (pytest's default import mode)

N_TEST_IMAGES = 100  # of the EEG card's evaluation: 2-way identification counts wins over 100 x 99 pairs
# How far a fresh `i2b evaluate --checkpoint bundled` may land from the card's model and ridge scores on another
# machine. The seeds are the same, so are the random numbers; what differs is rounding (another CPU's float32
# kernels, summation order) and the data's drift (below). Measured here: every weight perturbed by a relative 1e-6
# moved these scores by under 1e-6, while other noise (sampling seeds 1 and 2) moved them by 0.004-0.01 (MSE, PCC,
# correlation), 0.03-0.06 (2-way) and 0.01-0.03 (top-1). So the continuous scores get 1e-3, a thousand times
# rounding and still below a changed random stream. The identification scores count wins, which rounding changes
# only at a near-tie: 9 of the 9,900 pairs (ridge: 7) and none of the 100 top-1 choices lie within 1e-4 of a tie,
# 2 top-1 choices within 1e-3; so up to 20 pairs and 2 images may change.
TOLERANCE = {"mse": 1e-3, "pcc": 1e-3, "corr_across_images": 1e-3,
             "identification_2way": 20.5 / (N_TEST_IMAGES * (N_TEST_IMAGES - 1)),
             "identification_top1": 2.5 / N_TEST_IMAGES}
# The noise ceilings come from the data alone, in float64, so they are as reproducible as the synthetic data, and
# those are not bit-identical across machines: the simulated head is MNE's spherical conductor, whose Berg-Scherg
# parameters SciPy's COBYLA fits only to its resolution rhoend=1e-4, and where that iterative fit stops depends on
# last-bit rounding (the CPU, its BLAS kernels) and on the SciPy and MNE versions. Moving the fit's result by 1e-4
# moved the noise ceiling by 2.7e-6 and the true ceiling by 3.5e-6 (another machine's fresh clone landed 1.4e-6 from
# the card); 2e-5 allows five times that, 25 times finer than the rounding of the three decimals the card prints.
CEILING_TOLERANCE = 2e-5
# What the card's evaluation was asked to do is copied, not computed: it must match exactly.
SETTINGS = ("conditioning", "samples_per_image", "sampler", "num_inference_steps", "eta", "guidance_scale", "seed",
            "dataset", "subject", "n_test_images", "n_test_repetitions")


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Each bundled model's card, and the subjects of its `metrics.json` that the test evaluates again (the `small` worlds
# of just those subjects take seconds to make).
CARDS = [("bundled", "eeg", (1, 10)), ("bundled-meg", "meg", (1,))]


@pytest.mark.parametrize("name, modality, subjects", CARDS)
def test_bundled_models_reproduce_their_model_cards(name, modality, subjects, tmp_path_factory, capsys):
    root = synthetic.make_dataset(tmp_path_factory.mktemp(name) / f"synthetic-{modality}-small", modality=modality,
                                  preset="small", seed=0, subjects=list(subjects), progress=False)
    card = json.loads((pipeline.BUNDLED_MODELS[name] / "metrics.json").read_text())["subjects"]
    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", name, "--data-root", root, "--json",
                           "--subject", ",".join(map(str, subjects)))
    assert code == 0
    fresh = json.loads(out)
    fresh = fresh["subjects"] if len(subjects) > 1 else {str(subjects[0]): fresh}
    for subject in map(str, subjects):
        ours, theirs = card[subject], fresh[subject]
        assert ours["conditioning"] == "cross_attention" and theirs["subject_relation"] == "within"
        assert {key: theirs[key] for key in SETTINGS} == {key: ours[key] for key in SETTINGS}
        n = ours["n_test_images"]  # identification counts wins: the tolerance is in wins, whatever the image count
        tolerance = {**TOLERANCE, "identification_2way": 20.5 / (n * (n - 1)), "identification_top1": 2.5 / n}
        for who in ("model", "ridge"):
            for key, allowed in tolerance.items():
                assert theirs[who][key] == pytest.approx(ours[who][key], abs=allowed), (subject, who, key)
        for key in ("noise_ceiling", "true_noise_ceiling"):
            assert theirs[key] == pytest.approx(ours[key], abs=CEILING_TOLERANCE), (subject, key)


def test_quickstart_prints_one_json_object_and_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I2B_DATA_DIR", str(tmp_path / "data"))  # "from nothing": the world is made here
    code, out, _ = run_cli(capsys, "quickstart", "--json", "--out", tmp_path / "report")
    assert code == 0
    result = assert_evaluation_shape(out)  # the whole of stdout is one JSON object, of `i2b evaluate`'s shape
    assert result["conditioning"] == "cross_attention"
    assert 0.5 <= result["ridge"]["identification_2way"] <= 1
    assert result["data_root"] == str(tmp_path / "data" / "synthetic-eeg-tiny")  # I2B_FAST=1: the tiny world

    report = tmp_path / "report"
    assert json.loads((report / "metrics.json").read_text()) == result
    assert {"erp.png", "topomaps.png"} <= set(result["figures"])
    for name in result["figures"]:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "topomaps.png" in (report / "README.md").read_text()


def test_quickstart_prints_its_headline_next_to_both_baselines_and_both_ceilings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I2B_DATA_DIR", str(tmp_path / "data"))
    code, out, _ = run_cli(capsys, "quickstart", "--out", tmp_path / "report")
    assert code == 0
    result = json.loads((tmp_path / "report" / "metrics.json").read_text())
    line = next(text for text in out.splitlines() if text.startswith("correlation across images"))
    for words, value in (("model (conditional mean)", result["model"]["corr_across_images"]),
                         ("ridge", result["ridge"]["corr_across_images"]),
                         ("generative baseline (mean of 2)", result["generative_baseline"]["corr_across_images"]),
                         ("noise ceiling", result["noise_ceiling"]), ("true ceiling", result["true_noise_ceiling"])):
        assert f"{words} {report._fmt(value)}" in line, words


def test_sample_names_the_images_that_do_not_exist(tmp_path, capsys):
    code, out, err = run_cli(capsys, "sample", tmp_path / "cat.jpg", tmp_path / "dog.png", "--out", tmp_path / "x.npy")
    assert code == 1
    assert "2 image file(s) not found" in err and "cat.jpg" in err and "dog.png" in err
    assert not (tmp_path / "x.npy").exists()


def test_the_bundled_meg_model_samples_each_subject_and_scores_on_the_meg_world(tiny_meg_root, tmp_path, capsys):
    from i2b_minimal import data

    test = data.load_things_meg(tiny_meg_root, subject=2, split="test", progress=False)
    image = test.image_paths[0]
    outputs = []
    for subject in (2, 3, 2):
        out = tmp_path / f"meg-{subject}.npy"
        code, said, _ = run_cli(capsys, "sample", image, "--checkpoint", "bundled-meg", "--subject", subject,
                                "--steps", 3, "--out", out)
        assert code == 0 and "(1, 271, 281)" in said
        outputs.append(np.load(out))
    np.testing.assert_array_equal(outputs[0], outputs[2])  # the same subject, the same seed: the same signals
    assert not np.allclose(outputs[0], outputs[1])  # another subject's row: another brain
    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", "bundled-meg", "--data-root", tiny_meg_root,
                           "--subject", 4, "--no-ridge", "--steps", 2, "--samples-per-image", 2, "--json")
    result = json.loads(out)
    assert code == 0 and (result["dataset"], result["subject"], result["subject_relation"]) == ("things-meg", 4, "within")


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


def test_the_sampling_help_states_the_defaults_and_eta_with_ddpm_is_refused(capsys):
    defaults = pipeline.SamplingSettings()
    for command in ("sample", "evaluate"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"(default {defaults.num_inference_steps};" in text and f"(default {defaults.eta:g})" in text
    code, _, err = run_cli(capsys, "evaluate", "--sampler", "ddpm", "--eta", "0.3", "--no-ridge")
    assert code == 1 and "--eta sets DDIM's fresh noise" in err and "Traceback" not in err


def test_sampling_settings_are_checked_and_keywords_change_single_fields():
    assert pipeline.sampling_settings(pipeline.EVALUATION_SAMPLING, seed=3) == pipeline.SamplingSettings(
        samples_per_image=4, seed=3)
    with pytest.raises(ValueError, match="sampler must be one of"):
        pipeline.sampling_settings(sampler="euler")
    assert pipeline.SamplingSettings(eta=0.5) != pipeline.SamplingSettings()  # the default DDIM adds no fresh noise
    with pytest.raises(ValueError, match=r"samples-per-image \(samples_per_image\) must be a whole number >= 1, not 0"):
        pipeline.SamplingSettings(samples_per_image=0)
    with pytest.raises(TypeError, match="steps"):  # a misspelt field is an error, not ignored
        pipeline.generate("bundled", [__file__], steps=10)
