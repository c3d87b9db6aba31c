"""The synthetic world: pictures and captions, the simulated brain, and the THINGS files it writes."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from i2b_minimal import brain, metrics, pictures, synthetic

# Written out here rather than imported, so that a change in the library cannot hide itself.
THINGS_EEG2_CHANNELS = ["Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1",
                        "P5", "PO7", "PO3", "POz", "PO4", "PO8", "P6", "P2"]


def _digest(root):
    """SHA-256 of every file under root, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- pictures and captions


def test_captions_name_every_attribute():
    for attributes in synthetic.sample_attributes(np.random.default_rng(0), 50):
        text = synthetic.caption(attributes)
        for name in synthetic.ATTRIBUTES:
            assert attributes[name] in text, (name, text)
    for name in ("shape", "colour", "size", "position", "texture", "background"):
        assert len(synthetic.ATTRIBUTES[name]) >= 3


def test_drawing_is_deterministic_and_distinct():
    first, second = synthetic.sample_attributes(np.random.default_rng(1), 2)
    image = synthetic.draw_image(first, size=64)
    assert image.mode == "RGB" and image.size == (64, 64)
    assert image.tobytes() == synthetic.draw_image(dict(first), size=64).tobytes()
    assert image.tobytes() != synthetic.draw_image(second, size=64).tobytes()
    with pytest.raises(ValueError, match="shape"):
        synthetic.draw_image(dict(first, shape="unicorn"))


@pytest.mark.parametrize("position, side", [("left", -1), ("right", 1), ("upper left", -1), ("lower right", 1)])
def test_position_moves_the_shape(position, side):
    attributes = dict(shape="square", colour="red", size="small", position=position, texture="solid", background="light")
    pixels = np.asarray(synthetic.draw_image(attributes, size=96), dtype=float)
    shape_columns = np.nonzero(np.abs(pixels - pixels[0, 0]).sum(axis=-1) > 60)[1]  # a corner is background
    assert np.sign(shape_columns.mean() - 47.5) == side


def test_concepts_are_folder_names_that_fix_some_attributes():
    concepts = synthetic.all_concepts()
    names = {synthetic.concept_name(c) for c in concepts}
    assert len(names) == len(concepts) >= 1854  # enough for the full THINGS-MEG preset
    assert all(name == name.lower() and " " not in name for name in names)


# ----------------------------------------------------------------------------- the simulated brain


def _left_right_pairs(n=60):
    base = synthetic.sample_attributes(np.random.default_rng(2), n)
    return [dict(a, position="left") for a in base], [dict(a, position="right") for a in base]


@pytest.mark.parametrize("subject", range(1, 11))
def test_stimulus_on_the_left_drives_the_right_hemisphere(subject):
    left, right = _left_right_pairs()
    eeg = brain.make_subject("eeg", subject)
    at_p1 = np.argmin(np.abs(eeg.times - 0.10))
    rh = [THINGS_EEG2_CHANNELS.index(c) for c in ("P8", "PO8", "O2")]
    lh = [THINGS_EEG2_CHANNELS.index(c) for c in ("P7", "PO7", "O1")]

    def right_minus_left(attributes):
        response = brain.evoked(eeg, pictures.image_features(attributes))[:, :, at_p1]
        return response[:, rh].mean() - response[:, lh].mean()

    assert right_minus_left(left) > right_minus_left(right)


def test_image_content_changes_the_response_but_subjects_share_the_law():
    attributes = synthetic.sample_attributes(np.random.default_rng(3), 40)
    features = pictures.image_features(attributes)
    one, two = brain.make_subject("eeg", 1), brain.make_subject("eeg", 2)
    r1, r2 = brain.evoked(one, features), brain.evoked(two, features)
    assert r1.std(axis=0).max() > 0.2 * np.abs(r1.mean(axis=0)).max()  # images differ
    assert not np.allclose(r1, r2)                           # people differ
    # ...but the same image property moves both people's responses the same way: bigger P1 for higher contrast.
    amplitude, _ = brain.component_drive(features)
    assert np.corrcoef(amplitude[:, 0].sum(1), features["contrast"])[0, 1] > 0.3


AVERAGE_STIMULUS = dict(size=[0.5], contrast=[0.5], luminance=[0.5], complexity=[0.5], roundness=[0.5],
                        saturation=[0.5], texture=[0.5], side=[0.0], vertical=[0.0], hue_cos=[0.0], hue_sin=[0.0])


def test_trial_noise_is_spatially_correlated_mostly_low_frequency_and_as_strong_as_the_snr_says():
    subject = brain.make_subject("eeg", 1)
    noise = brain.trial_noise(subject, np.random.default_rng(0), 400)
    corr = np.corrcoef(noise.transpose(1, 0, 2).reshape(len(subject.ch_names), -1))
    assert np.abs(corr[np.triu_indices_from(corr, 1)]).mean() > 0.2
    power = (np.abs(np.fft.rfft(noise, axis=-1)) ** 2).mean(axis=(0, 1))
    freqs = np.fft.rfftfreq(noise.shape[-1], 0.01)
    assert power[(freqs > 2) & (freqs < 12)].mean() > 3 * power[freqs > 35].mean()
    # SNR: the mean response to an average picture over its first 500 ms, against the noise (both in volts).
    response = brain.evoked(subject, {k: np.array(v) for k, v in AVERAGE_STIMULUS.items()})[0]
    window = (subject.times >= 0) & (subject.times < 0.5)
    snr = np.sqrt(np.mean(response[:, window].astype(float) ** 2)) / noise.std()
    assert snr == pytest.approx(brain.SNR["eeg"], rel=0.05)


@pytest.mark.parametrize("modality", ["eeg", "meg"])
def test_trial_noise_does_not_wrap_around(modality):
    """A periodic (FFT) synthesis made an epoch's first and last samples neighbours: they correlated at 0.69."""
    subject = brain.make_subject(modality, 1)
    n = 4000
    noise = brain.trial_noise(subject, np.random.default_rng(1), n, samples=[0, 1, -1])
    def corr(a, b):  # per channel, across trials, then the mean over channels
        return np.mean([np.corrcoef(noise[:, c, a], noise[:, c, b])[0, 1] for c in range(noise.shape[1])])
    assert corr(0, 1) > 0.5  # neighbouring samples are correlated (1/f noise): the check can see a correlation
    # Each channel's correlation has a standard error of 1/sqrt(n) = 0.016; their mean cannot have more.
    assert abs(corr(0, 2)) < 4 / np.sqrt(n)


def test_written_noise_has_no_wrap_around_and_is_whitened(tiny_eeg_root):
    """The noise in the files (data minus the saved truth) after MVNN: close to white, first and last samples apart.

    Tolerance: MVNN cannot make it exactly white. It estimates the covariance with Ledoit-Wolf
    shrinkage from 4 (training) or 20 (test) repetitions per image, which pulls the estimate's
    eigenvalues towards their mean, and from each image's spread about its own mean, smaller than
    the noise by (n - 1) / n. Before it, three quarters of the noise variance is one common-mode
    direction (eigenvalues spread over a factor of about 100, mean |r| between channels 0.73);
    after it, measured on this world, the eigenvalues lie in 0.45-1.45 and mean |r| is 0.08. The
    bounds leave room for the Monte-Carlo error of 704 trials (a few hundredths) and fail on the
    unwhitened noise by far.
    """
    from i2b_minimal import data

    residuals = []
    for split in ("train", "test"):
        record = data.load_things_eeg2(tiny_eeg_root, subject=2, split=split)
        truth = synthetic.load_ground_truth(tiny_eeg_root, 2, record.image_paths)
        residuals.append((record.signals - truth[:, None]).reshape(-1, 17, 100).astype(np.float64))
    noise = np.concatenate(residuals)
    covariance = np.einsum("nct,ndt->cd", noise, noise) / (noise.shape[0] * noise.shape[2])
    eigenvalues = np.linalg.eigvalsh(covariance)
    assert 0.35 < eigenvalues.min() and eigenvalues.max() < 1.6 and eigenvalues.max() / eigenvalues.min() < 4
    correlation = covariance / np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)))
    assert np.abs(correlation[np.triu_indices(17, 1)]).mean() < 0.12
    first_last = [np.corrcoef(noise[:, c, 0], noise[:, c, -1])[0, 1] for c in range(17)]
    assert abs(np.mean(first_last)) < 4 / np.sqrt(len(noise))  # 0.15 before: at most 0.008 of chance


# ----------------------------------------------------------------------------- trial-to-trial variability


def _fine_subject(modality="eeg"):
    """Subject 1 sampled at 1 kHz from -0.1 s, so that peak latencies resolve a few milliseconds."""
    import dataclasses

    return dataclasses.replace(brain.make_subject(modality, 1), times=np.arange(-100, 700) / 1000)


def test_single_trials_average_to_the_saved_mean_response():
    """The expected response (exact: jittered Gaussians average to broadened ones) is the Monte-Carlo mean."""
    subject = _fine_subject()
    features = pictures.image_features(synthetic.sample_attributes(np.random.default_rng(5), 2))
    n = 20000
    trials = brain.single_trials(subject, features, np.random.default_rng(6), shown=np.repeat([0, 1], n))
    trials = trials.reshape(2, n, *trials.shape[1:])
    standard_error = trials.std(axis=1) / np.sqrt(n)
    visible = standard_error > 1e-3 * standard_error.max()  # where the response is, not its vanishing tails

    def largest_z(mean_response):
        return np.abs((trials.mean(axis=1) - mean_response) / standard_error)[visible].max()

    # Each image's single trials differ by 2 random numbers per component (gain, jitter), so the Monte-Carlo
    # error of the mean is a smooth function with about 2 x 5 x 2 independent Gaussian parts over all channels
    # and times: their largest |z| passes 4.5 with a probability of about 20 * 7e-6.
    assert largest_z(brain.evoked(subject, features)) < 4.5
    # The narrower, higher peaks without the jitter (by 4% for the P1) are far outside that error.
    assert largest_z(_unjittered_evoked(subject, features)) > 10


def _unjittered_evoked(subject, features):
    """What :func:`brain.evoked` would be without the jitter: every component at its width only."""
    from i2b_minimal.world import variability

    amplitude, shift = brain.component_drive(features)
    latency = np.array([c.latency for c in brain.COMPONENTS]) + subject.latency_offset + shift
    course = brain.SIGNS[:, None] * variability.time_course(subject.times, latency, brain.WIDTHS)
    return np.einsum("ckh,nkh,nkt->nct", subject.lead_field, amplitude * subject.gain, course)


def test_single_trials_jitter_in_latency_and_vary_in_amplitude():
    import dataclasses

    from i2b_minimal.world import variability

    subject = _fine_subject()
    only_p1 = np.zeros_like(subject.lead_field)
    only_p1[:, 0] = subject.lead_field[:, 0]
    subject = dataclasses.replace(subject, lead_field=only_p1)  # the other components would overlap its peak
    features = pictures.image_features(synthetic.sample_attributes(np.random.default_rng(7), 1))
    trials = brain.single_trials(subject, features, np.random.default_rng(8), shown=np.zeros(2000, dtype=int))
    channel = np.argmax(np.abs(brain.evoked(subject, features)[0]).max(axis=1))  # where the P1 shows most
    waveform = np.abs(trials[:, channel])
    latencies = subject.times[np.argmax(waveform, axis=1)]
    p1 = brain.COMPONENTS[0]
    assert np.std(latencies) == pytest.approx(p1.jitter, rel=0.1)  # single trials' peaks move by 4 ms (sd)
    peaks = waveform.max(axis=1)
    lognormal_sd = np.sqrt(np.exp(variability.GAIN_SIGMA**2) - 1)  # of a gain with mean 1
    assert np.std(peaks) / np.mean(peaks) == pytest.approx(lognormal_sd, rel=0.1)
    assert stats.skew(peaks) > 0.5  # lognormal: skewed (0.95), where Gaussian amplitude noise would give 0


# ----------------------------------------------------------------------------- MVNN


def test_mvnn_covariance_is_the_mean_of_scikit_learns_shrunk_covariances():
    """Per image and time point, StandardScaler + ledoit_wolf, scaled back; mean over those, then partitions."""
    from sklearn.covariance import ledoit_wolf
    from sklearn.preprocessing import StandardScaler

    from i2b_minimal.world import mvnn

    rng = np.random.default_rng(10)
    mixing = rng.normal(size=(6, 6))
    partitions = [np.einsum("dc,irct->irdt", mixing, rng.normal(size=(5, reps, 6, 7))) for reps in (2, 4, 12)]
    partitions[1][0, :, 3, 2] = 1.5  # a constant channel: StandardScaler leaves it unscaled
    expected = []
    for signals in partitions:
        blocks = []
        for image in signals:
            for t in range(signals.shape[-1]):
                scaler = StandardScaler().fit(image[:, :, t])
                blocks.append(ledoit_wolf(scaler.transform(image[:, :, t]))[0] * np.outer(scaler.scale_, scaler.scale_))
        expected.append(np.mean(blocks, axis=0))
    np.testing.assert_allclose(mvnn.noise_covariance(partitions, chunk=2), np.mean(expected, axis=0), rtol=1e-12,
                               atol=1e-12)


def test_mvnn_whitening_is_the_inverse_matrix_square_root():
    from scipy.linalg import fractional_matrix_power

    from i2b_minimal.world import mvnn

    rng = np.random.default_rng(11)
    root = rng.normal(size=(17, 17))
    covariance = root @ root.T + 0.1 * np.eye(17)
    whitening = mvnn.inverse_sqrt(covariance)
    np.testing.assert_allclose(whitening, fractional_matrix_power(covariance, -0.5).real, atol=1e-10)
    np.testing.assert_allclose(whitening @ covariance @ whitening, np.eye(17), atol=1e-10)
    signals = rng.normal(size=(3, 2, 17, 5))
    np.testing.assert_allclose(mvnn.whiten(whitening, signals)[1, 0, :, 4], whitening @ signals[1, 0, :, 4])
    with pytest.raises(ValueError, match="positive definite"):
        mvnn.inverse_sqrt(np.diag([1.0, 0.0, 2.0]))


# ----------------------------------------------------------------------------- THINGS-EEG2 files


def _check_eeg_tree(root, preset, subjects):
    spec = synthetic.PRESETS["eeg"][preset]
    n_train = spec["train_concepts"] * spec["images_per_concept"]
    train_folders = sorted((root / "image_set" / "training_images").iterdir())
    test_folders = sorted((root / "image_set" / "test_images").iterdir())
    assert [f.name[:5] for f in train_folders] == [f"{i:05d}" for i in range(1, spec["train_concepts"] + 1)]
    assert len(test_folders) == spec["test_concepts"]
    assert not {f.name[6:] for f in train_folders} & {f.name[6:] for f in test_folders}  # disjoint concepts
    train_images = [img for folder in train_folders for img in sorted(folder.iterdir())]
    assert len(train_images) == n_train
    assert all(img.name.startswith(img.parent.name[6:] + "_") and img.name.endswith("b.jpg") for img in train_images)
    expected = {"train": (n_train, spec["train_reps"], 17, 100), "test": (spec["test_concepts"], spec["test_reps"], 17, 100)}
    for subject in subjects:
        for split, name in (("train", "training"), ("test", "test")):
            record = np.load(root / "preprocessed_data" / f"sub-{subject:02d}" / f"preprocessed_eeg_{name}.npy",
                             allow_pickle=True).item()
            assert set(record) == {"preprocessed_eeg_data", "ch_names", "times"}
            data = record["preprocessed_eeg_data"]
            assert data.shape == expected[split] and data.dtype == np.float64
            assert list(record["ch_names"]) == THINGS_EEG2_CHANNELS
            np.testing.assert_allclose(record["times"], -0.2 + 0.01 * np.arange(100), atol=1e-9)
            assert 0.5 < data.std() < 2.0  # whitened: unitless, about unit variance
    table = synthetic.load_captions(root)
    train_rows = table[table.split == "train"]
    assert [root / p for p in train_rows.image_path] == train_images  # ground-truth rows follow the data rows


def test_tiny_eeg_has_the_things_eeg2_layout(tiny_eeg_root):
    _check_eeg_tree(tiny_eeg_root, "tiny", range(1, 11))
    with Image.open(next((tiny_eeg_root / "image_set" / "test_images").rglob("*s.jpg"))) as image:
        assert image.format == "JPEG" and image.mode == "RGB"


def test_small_eeg_has_the_real_layout_at_its_size(tmp_path):
    from i2b_minimal import data

    root = synthetic.make_dataset(tmp_path / "small", modality="eeg", preset="small", subjects=[1], progress=False)
    _check_eeg_tree(root, "small", [1])
    spec = synthetic.PRESETS["eeg"]["small"]
    test = data.load_things_eeg2(root, subject=1, split="test")
    assert test.signals.shape == (spec["test_concepts"], spec["test_reps"], 17, 100)
    truth = synthetic.load_ground_truth(root, 1, test.image_paths)
    assert truth.shape == (spec["test_concepts"], 17, 100)
    # The saved truth is the signal the data carry: the ceiling it gives matches the split-half estimate.
    true = metrics.post_stimulus_mean(metrics.true_noise_ceiling(truth, test.signals), test.times)
    assert true == pytest.approx(metrics.noise_ceiling_summary(test.signals, test.times, n_splits=20, progress=False),
                                 abs=0.05)


def test_small_meg_round_trip(tmp_path):
    from i2b_minimal import data

    spec = synthetic.PRESETS["meg"]["small"]
    root = synthetic.make_dataset(tmp_path / "small", modality="meg", preset="small", subjects=[1], progress=False)
    test = data.load_things_meg(root, subject=1, split="test", progress=False)
    train = data.load_things_meg(root, subject=1, split="train", progress=False)
    assert test.signals.shape == (spec["test_concepts"], spec["sessions"], 271, 281)
    # Training keeps only the concepts that are not also test concepts, one epoch per image.
    assert train.signals.shape == ((spec["concepts"] - spec["test_concepts"]) * spec["sessions"], 1, 271, 281)
    assert not set(train.concepts) & set(test.concepts)
    assert synthetic.load_ground_truth(root, 1, test.image_paths).shape == (spec["test_concepts"], 271, 281)


def test_ground_truth_is_the_noiseless_mean_of_the_trials(tiny_eeg_root):
    table = synthetic.load_captions(tiny_eeg_root)
    test_paths = [tiny_eeg_root / p for p in table[table.split == "test"].image_path]
    truth = synthetic.load_ground_truth(tiny_eeg_root, 3, test_paths)
    assert truth.shape == (len(test_paths), 17, 100) and truth.dtype == np.float32
    record = np.load(tiny_eeg_root / "preprocessed_data" / "sub-03" / "preprocessed_eeg_test.npy", allow_pickle=True).item()
    mean = record["preprocessed_eeg_data"].mean(axis=1)
    post = record["times"] > 0
    aligned = np.corrcoef(truth[..., post].ravel(), mean[..., post].ravel())[0, 1]
    shuffled = np.corrcoef(truth[::-1][..., post].ravel(), mean[..., post].ravel())[0, 1]
    assert aligned > 0.6 and aligned > shuffled + 0.1
    residual = record["preprocessed_eeg_data"] - truth[:, None]
    assert abs(residual.mean()) < 0.05  # the noise is zero-mean around the ground truth
    with pytest.raises(ValueError, match="not in"):
        synthetic.load_ground_truth(tiny_eeg_root, 3, [tiny_eeg_root / "elsewhere.jpg"])
    with pytest.raises(FileNotFoundError, match="i2b data synth"):
        synthetic.load_captions(tiny_eeg_root / "missing")


# ----------------------------------------------------------------------------- THINGS-MEG files


def test_tiny_meg_has_the_things_meg_layout(tiny_meg_root):
    import mne

    spec = synthetic.PRESETS["meg"]["tiny"]
    per_session = spec["concepts"] + spec["test_concepts"] + spec["catch"]
    epochs = mne.read_epochs(tiny_meg_root / "derivatives" / "preprocessed" / "preprocessed_P2-epo.fif", verbose=False)
    assert len(epochs) == spec["sessions"] * per_session
    assert len(epochs.ch_names) == 271 and set(epochs.get_channel_types()) == {"mag"}
    assert epochs.info["sfreq"] == 200 and len(epochs.times) == 281
    np.testing.assert_allclose(epochs.times[[0, -1]], [-0.1, 1.3], atol=1e-9)
    # Z-scored per epoch and channel against the baseline, as the published THINGS-MEG epochs are.
    baseline = epochs.get_data()[..., epochs.times <= 0]
    np.testing.assert_allclose(baseline.mean(axis=-1), 0, atol=1e-6)  # the .fif stores float32
    np.testing.assert_allclose(baseline.std(axis=-1), 1, rtol=1e-5)

    table = pd.read_csv(tiny_meg_root / "sourcedata" / "sample_attributes_P2.csv")
    assert len(table) == len(epochs)
    counts = table.trial_type.value_counts().to_dict()
    assert counts == {"exp": spec["sessions"] * spec["concepts"], "test": spec["sessions"] * spec["test_concepts"],
                      "catch": spec["sessions"] * spec["catch"]}
    assert all((tiny_meg_root / p).is_file() for p in table.image_path)
    exp, test = table[table.trial_type == "exp"], table[table.trial_type == "test"]
    assert exp.image_path.is_unique and exp.image_path.str.startswith("images_meg/").all()
    assert (test.image_path.value_counts() == spec["sessions"]).all()
    assert test.image_path.str.match(r"images_test_meg/[a-z_]+_\d\ds\.jpg$").all()
    assert table[table.trial_type == "catch"].image_path.str.startswith("images_catch_meg/").all()
    exp_concepts = set(exp.image_path.str.split("/").str[1])
    test_concepts = set(test.image_path.str.extract(r"images_test_meg/(.+)_\d\ds\.jpg")[0])
    assert test_concepts <= exp_concepts  # as in THINGS-MEG: the loader must remove them from training


def test_meg_ground_truth_is_the_expected_zscored_trial():
    subject = brain.make_subject("meg", 2)
    features = pictures.image_features(synthetic.sample_attributes(np.random.default_rng(4), 2))
    responses = brain.evoked(subject, features)
    truth = brain.zscored_ground_truth(subject, responses)
    n = 150  # repetitions of each image
    trials = brain.zscore(subject, brain.record(subject, features, np.random.default_rng(9), shown=np.repeat([0, 1], n)))
    mean = trials.reshape(2, n, *responses.shape[1:]).mean(axis=1)
    post = subject.times > 0
    slope = np.sum(mean[..., post] * truth[..., post]) / np.sum(truth[..., post] ** 2)
    assert 0.95 < slope < 1.05  # the average of many z-scored repetitions converges to the truth...
    assert np.corrcoef(mean[..., post].ravel(), truth[..., post].ravel())[0, 1] > 0.95


def test_meg_ground_truth_is_aligned_with_the_trials(tiny_meg_root):
    import mne

    table = synthetic.load_captions(tiny_meg_root)
    assert set(table.split) == {"train", "test"}
    responses = np.load(tiny_meg_root / "ground_truth" / "sub-01" / "responses.npy")
    assert responses.shape == (len(table), 271, 281) and responses.dtype == np.float32
    epochs = mne.read_epochs(tiny_meg_root / "derivatives" / "preprocessed" / "preprocessed_P1-epo.fif", verbose=False)
    trials = pd.read_csv(tiny_meg_root / "sourcedata" / "sample_attributes_P1.csv")
    pictured = (trials.trial_type != "catch").to_numpy()
    truth = synthetic.load_ground_truth(tiny_meg_root, 1, [tiny_meg_root / p for p in trials.image_path[pictured]])
    data = epochs.get_data()[pictured]
    post = epochs.times > 0
    assert np.corrcoef(truth[..., post].ravel(), data[..., post].ravel())[0, 1] > 0.15
    slope = np.sum(data[..., post] * truth[..., post]) / np.sum(truth[..., post].astype(float) ** 2)
    assert 0.8 < slope < 1.2  # the saved truth is in the units of the z-scored trials


# ----------------------------------------------------------------------------- seeds, subjects, errors


@pytest.mark.parametrize("modality", ["eeg", "meg"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, modality):
    first = synthetic.make_dataset(tmp_path / "a", modality=modality, seed=5, subjects=[1], progress=False)
    again = synthetic.make_dataset(tmp_path / "b", modality=modality, seed=5, subjects=[1], progress=False)
    other = synthetic.make_dataset(tmp_path / "c", modality=modality, seed=6, subjects=[1], progress=False)
    assert _digest(first) == _digest(again)
    changed = {k for k, v in _digest(other).items() if _digest(first).get(k) != v}
    data_file = "preprocessed_data/sub-01/preprocessed_eeg_training.npy" if modality == "eeg" \
        else "derivatives/preprocessed/preprocessed_P1-epo.fif"
    assert data_file in changed and "ground_truth/images.csv" in changed


def test_one_subject_alone_is_the_same_as_within_all(tmp_path, tiny_eeg_root):
    alone = synthetic.make_dataset(tmp_path / "one", modality="eeg", subjects=[4], progress=False)
    assert not (alone / "preprocessed_data" / "sub-01").exists()
    name = "preprocessed_data/sub-04/preprocessed_eeg_test.npy"
    assert (alone / name).read_bytes() == (tiny_eeg_root / name).read_bytes()


def test_cli_writes_the_default_folder(tmp_path, monkeypatch):
    from i2b_minimal import cli

    monkeypatch.delenv("I2B_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # outside a checkout: ./data
    assert cli.main(["data", "synth", "--modality", "eeg", "--subjects", "2"]) == 0
    assert (tmp_path / "data" / "synthetic-eeg-tiny" / "preprocessed_data" / "sub-02" / "preprocessed_eeg_test.npy").is_file()


def test_default_root_follows_the_data_dir_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("I2B_DATA_DIR", str(tmp_path / "elsewhere"))
    root = synthetic.make_dataset(modality="eeg", subjects=[1], progress=False)
    assert root == tmp_path / "elsewhere" / "synthetic-eeg-tiny"
    assert (root / "preprocessed_data" / "sub-01" / "preprocessed_eeg_training.npy").is_file()


def test_ensure_dataset_writes_only_the_subjects_without_a_marker(tmp_path, monkeypatch):
    from i2b_minimal import data

    make, written = synthetic.make_dataset, []
    monkeypatch.setattr(synthetic, "make_dataset", lambda *args: written.append(args[4]) or make(*args))
    root = tmp_path / "synthetic-eeg-tiny"
    assert synthetic.ensure_dataset(root, "eeg", "tiny", subjects=[1], progress=False) == root
    synthetic.ensure_dataset(root, "eeg", "tiny", subjects=[1, 2], progress=False)
    synthetic.ensure_dataset(root, "eeg", "tiny", subjects=[1, 2], progress=False)
    assert written == [[1], [2]]
    assert data.load_things_eeg2(root, subject=2, split="test").n_images == synthetic.PRESETS["eeg"]["tiny"]["test_concepts"]
    (root / "ground_truth" / "sub-02" / "complete.json").unlink()  # as if the run had been cut off before the end
    synthetic.ensure_dataset(root, "eeg", "tiny", subjects=[1, 2], progress=False)
    assert written == [[1], [2], [2]]
    with pytest.raises(ValueError, match="subject 1 made with .*'preset': 'tiny'"):
        synthetic.ensure_dataset(root, "eeg", "small", subjects=[1], progress=False)
    with pytest.raises(ValueError, match="'seed': 0"):
        synthetic.ensure_dataset(root, "eeg", "tiny", subjects=[1], seed=1, progress=False)


def test_ensure_dataset_writes_again_a_subject_of_an_older_simulation(tmp_path):
    import json

    root = synthetic.make_dataset(tmp_path / "world", "eeg", "tiny", subjects=[1, 2], progress=False)
    marker = root / "ground_truth" / "sub-01" / "complete.json"
    assert json.loads(marker.read_text())["generator"] == synthetic.markers.GENERATOR_VERSION
    data_file = root / "preprocessed_data" / "sub-01" / "preprocessed_eeg_test.npy"
    current = data_file.read_bytes()
    data_file.write_bytes(b"written by an older simulation")
    marker.write_text(json.dumps({"modality": "eeg", "preset": "tiny", "seed": 0}))  # as version 1 wrote it
    with pytest.warns(UserWarning, match="subject 1 was written by version 1 of the simulation"):
        synthetic.ensure_dataset(root, "eeg", "tiny", subjects=[1, 2], progress=False)
    assert data_file.read_bytes() == current
    assert json.loads(marker.read_text())["generator"] == synthetic.markers.GENERATOR_VERSION


@pytest.mark.parametrize("kwargs, message", [
    (dict(modality="fmri"), "modality"),
    (dict(preset="huge"), "tiny"),
    (dict(modality="eeg", subjects=[11]), "1-10"),
    (dict(modality="meg", subjects=[0, 5]), "1-4"),
])
def test_bad_requests_say_what_is_allowed(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic.make_dataset(tmp_path / "x", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()
