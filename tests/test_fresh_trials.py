"""New trials from the world that recorded a synthetic dataset (``world/fresh_trials.py``)."""

import shutil

import numpy as np
import pytest

from i2b_minimal import synthetic
from i2b_minimal.datasets import loaders
from i2b_minimal.world import brain, mvnn, pictures
from i2b_minimal.world.fresh_trials import fresh_trials


def _residual_variance(trials, samples):
    """Each channel's variance of the trials about their image's mean, over the given time samples."""
    return (trials - trials.mean(axis=1, keepdims=True))[..., samples].var(axis=(0, 1, 3))


def test_the_saved_whitening_takes_the_mean_response_in_volts_to_the_saved_truth(tiny_eeg_root):
    test = loaders.load("eeg", tiny_eeg_root, subject=1, split="test")
    rows = synthetic.load_captions(tiny_eeg_root).iloc[synthetic.image_rows(tiny_eeg_root, test.image_paths)]
    features = pictures.image_features(rows.to_dict("records"))
    subject = brain.make_subject("eeg", 1)
    volts = brain.remove_baseline(subject, brain.evoked(subject, features))
    whitening = np.load(tiny_eeg_root / "ground_truth" / "sub-01" / "whitening.npy")
    truth = synthetic.load_ground_truth(tiny_eeg_root, 1, test.image_paths)
    np.testing.assert_allclose(mvnn.whiten(whitening, volts), truth, rtol=1e-4, atol=1e-5 * np.abs(truth).max())
    np.testing.assert_allclose(whitening, whitening.T)  # MVNN's symmetric inverse square root


def test_fresh_eeg_trials_average_to_the_truth_and_spread_as_the_recorded_ones(tiny_eeg_root):
    test = loaders.load("eeg", tiny_eeg_root, subject=1, split="test")
    truth = synthetic.load_ground_truth(tiny_eeg_root, 1, test.image_paths)
    fresh = fresh_trials(tiny_eeg_root, "eeg", 1, test.image_paths, 200, np.random.default_rng(0))
    assert fresh.shape == (test.n_images, 200, *test.signals.shape[2:])
    spread = fresh.std(axis=1) / np.sqrt(200)  # the standard error of the mean of 200
    assert np.mean(np.abs(fresh.mean(axis=1) - truth) < 3 * spread) > 0.99
    everywhere = slice(None)
    ratio = _residual_variance(fresh, everywhere) / _residual_variance(test.signals, everywhere)
    assert np.all((ratio > 0.9) & (ratio < 1.1)), ratio  # 16 images x 20 repetitions recorded


def test_without_the_response_locked_variability_only_the_response_spreads_less(tiny_eeg_root):
    test = loaders.load("eeg", tiny_eeg_root, subject=1, split="test")
    draw = dict(root=tiny_eeg_root, modality="eeg", subject=1, image_paths=test.image_paths, repetitions=100)
    everything = fresh_trials(**draw, rng=np.random.default_rng(1))
    noise_only = fresh_trials(**draw, rng=np.random.default_rng(1), variability="noise")
    baseline, response = test.times < 0, (test.times > 0.1) & (test.times < 0.4)
    np.testing.assert_allclose(_residual_variance(noise_only, baseline) / _residual_variance(everything, baseline),
                               1.0, atol=0.05)
    assert np.all(_residual_variance(noise_only, response) < _residual_variance(everything, response))
    truth = synthetic.load_ground_truth(tiny_eeg_root, 1, test.image_paths)
    np.testing.assert_allclose(noise_only.mean(axis=1), truth, atol=4 * noise_only.std(axis=1).max() / 10)


def test_fresh_meg_trials_are_z_scored_against_their_baseline(tiny_meg_root):
    test = loaders.load("meg", tiny_meg_root, subject=1, split="test")
    fresh = fresh_trials(tiny_meg_root, "meg", 1, test.image_paths[:3], 5, np.random.default_rng(0))
    baseline = fresh[..., test.times <= 0]
    np.testing.assert_allclose(baseline.mean(axis=-1), 0.0, atol=1e-9)
    np.testing.assert_allclose(baseline.std(axis=-1), 1.0, rtol=1e-9)


def test_a_world_without_its_whitening_says_how_to_write_it_again(tiny_eeg_root, tmp_path):
    copy = tmp_path / "root"
    shutil.copytree(tiny_eeg_root / "ground_truth", copy / "ground_truth")
    (copy / "ground_truth" / "sub-01" / "whitening.npy").unlink()
    with pytest.raises(FileNotFoundError, match="i2b data synth --modality eeg --preset tiny --seed 0 --subjects 1"):
        fresh_trials(copy, "eeg", 1, [], 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="variability must be one of"):
        fresh_trials(tiny_eeg_root, "eeg", 1, [], 1, np.random.default_rng(0), variability="gain")
