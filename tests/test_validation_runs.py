"""Model selection on the validation split: a run that holds out the validation concepts, scored on them alone."""

import json

import numpy as np
import pytest

from i2b_minimal import cli, pipeline, train
from i2b_minimal.datasets import loaders, splits
from i2b_minimal.training import export
from test_train import clip_dir, make_config  # noqa: F401  (a fixture and a helper; tests/ is on sys.path)


@pytest.fixture(scope="module")
def held_out_run(tiny_eeg_root, clip_dir, tmp_path_factory):  # noqa: F811
    config = make_config(tiny_eeg_root, clip_dir, tmp_path_factory.mktemp("held-out"), hold_out_validation=True,
                         high_noise_fraction=0.5, steps=4)
    return train.train(config, progress=False)


def test_a_held_out_run_trains_on_the_fit_concepts_only(held_out_run, tiny_eeg_root):
    training = loaders.load("things-eeg2", tiny_eeg_root, subject=1, split="train")
    fit, validation = splits.split_training_data(training)
    meta = export.read_meta(held_out_run.model_dir)
    assert meta["hold_out_validation"] is True
    assert meta["n_train_images"] == fit.n_images < training.n_images
    assert set(validation.concepts).isdisjoint(fit.concepts)
    assert meta["config"]["high_noise_fraction"] == 0.5 and meta["config"]["hold_out_validation"] is True


def test_evaluate_scores_the_validation_images_with_baselines_fitted_on_the_rest(held_out_run, tiny_eeg_root,
                                                                                capsys):
    code = cli.main(["evaluate", "--checkpoint", str(held_out_run.model_dir), "--split", "validation", "--json",
                     "--samples-per-image", "2", "--steps", "5"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    training = loaders.load("things-eeg2", tiny_eeg_root, subject=1, split="train")
    fit, validation = splits.split_training_data(training)
    assert result["split"] == "validation"
    assert result["n_test_images"] == validation.n_images
    assert result["n_test_repetitions"] == validation.n_repetitions
    # The ceiling is the validation images' own, not the test split's.
    assert result["noise_ceiling"] == pytest.approx(
        pipeline.evaluate(held_out_run.model_dir, split="validation", samples_per_image=2, num_inference_steps=5,
                          ridge=False, progress=False)["noise_ceiling"])
    test = loaders.load("things-eeg2", tiny_eeg_root, subject=1, split="test")
    assert test.n_images != validation.n_images  # the two cannot be confused by their size alone
    assert np.isfinite(result["ridge"]["corr_across_images"])


def test_scoring_a_model_on_validation_images_it_was_trained_on_is_refused(tiny_eeg_root, clip_dir, tmp_path,
                                                                           capsys):  # noqa: F811
    run = train.train(make_config(tiny_eeg_root, clip_dir, tmp_path, steps=2), progress=False)
    code = cli.main(["evaluate", "--checkpoint", str(run.model_dir), "--split", "validation", "--no-ridge"])
    err = capsys.readouterr().err
    assert code == 1
    assert "was trained on the validation images too" in err and "--hold-out-validation" in err
