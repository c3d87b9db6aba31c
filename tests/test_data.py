"""Loaders: hand-written files in the published formats, the synthetic world, and every bad input.

The hand-written fixtures are built here with numpy and MNE directly, in the
formats data/README.md draws, so they prove that the loaders read the real formats
independently of our own synthetic writer. Signal values encode the row they
came from, so the tests can check row order and repetition grouping exactly.
"""

import mne
import numpy as np
import pandas as pd
import pytest
import torch

from i2b_minimal import data, things_format
from i2b_minimal.datasets import arrays, safe_pickle

EEG_TIMES = -0.2 + np.arange(100) / 100.0
TRAIN_CONCEPTS = {"00002_zebra": ["zebra_02b.jpg", "zebra_01b.jpg"], "00001_aardvark": ["aardvark_01b.jpg", "aardvark_10s.jpg"]}
TEST_CONCEPTS = {"00002_yak": ["yak_06s.jpg"], "00001_apple": ["apple_01b.jpg"]}


def _write_images(folder, concepts):
    for concept, images in concepts.items():  # written unsorted on purpose
        (folder / concept).mkdir(parents=True)
        for image in images:
            (folder / concept / image).write_bytes(b"jpg")


def _eeg_signals(n_images, n_reps):
    # value = 1000 * image row + 100 * repetition + channel: every cell names its origin
    grid = np.arange(n_images)[:, None, None, None] * 1000.0 + np.arange(n_reps)[None, :, None, None] * 100.0
    return (grid + np.arange(17)[None, None, :, None] + 0 * EEG_TIMES).astype(np.float64)


@pytest.fixture
def eeg_root(tmp_path):
    root = tmp_path / "eeg"
    _write_images(root / "image_set" / "training_images", TRAIN_CONCEPTS)
    _write_images(root / "image_set" / "test_images", TEST_CONCEPTS)
    folder = root / "preprocessed_data" / "sub-01"
    folder.mkdir(parents=True)
    for word, n_images, n_reps in (("training", 4, 4), ("test", 2, 80)):
        record = {"preprocessed_eeg_data": _eeg_signals(n_images, n_reps), "ch_names": list(data.EEG_CHANNELS),
                  "times": EEG_TIMES}
        np.save(folder / f"preprocessed_eeg_{word}.npy", record)
    return root


def _rewrite_eeg(root, word="training", **changes):
    path = root / "preprocessed_data" / "sub-01" / f"preprocessed_eeg_{word}.npy"
    record = safe_pickle.load_npy(path).item()
    record.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del record[key]
    np.save(path, record)
    return path


def test_eeg_reads_the_published_format(eeg_root):
    (eeg_root / "image_set" / "training_images" / "00001_aardvark" / "._aardvark_01b.jpg").write_bytes(b"AppleDouble")
    train = data.load_things_eeg2(eeg_root, subject=1, split="training")
    assert train.signals.dtype == np.float32 and train.signals.shape == (4, 4, 17, 100)
    assert (train.split, train.dataset, train.ch_type, train.subject) == ("train", "things-eeg2", "eeg", 1)
    assert train.ch_names == list(data.EEG_CHANNELS) and train.sfreq == 100.0
    np.testing.assert_allclose(train.times, EEG_TIMES)
    # Row order: sorted concept folders, then sorted images inside each; hidden files are no images.
    expected = ["00001_aardvark/aardvark_01b.jpg", "00001_aardvark/aardvark_10s.jpg",
                "00002_zebra/zebra_01b.jpg", "00002_zebra/zebra_02b.jpg"]
    assert [f"{p.parent.name}/{p.name}" for p in train.image_paths] == expected
    assert all(p.is_absolute() and p.is_file() for p in train.image_paths)
    assert train.concepts == ["aardvark", "aardvark", "zebra", "zebra"]
    np.testing.assert_array_equal(train.signals[:, :, 0, 0], _eeg_signals(4, 4)[:, :, 0, 0])
    np.testing.assert_array_equal(train.signals[2, 3, :, 5], 2300 + np.arange(17))
    test = data.load_things_eeg2(eeg_root, subject=1, split="test")
    assert test.signals.shape == (2, 80, 17, 100) and test.concepts == ["apple", "yak"]


def test_brain_data_helpers(eeg_root):
    train = data.load_things_eeg2(eeg_root)
    assert (train.n_images, train.n_repetitions) == (4, 4)
    np.testing.assert_allclose(train.mean_over_repetitions(), train.signals.mean(axis=1))
    part = train.subset([3, 0])
    assert part.concepts == ["zebra", "aardvark"] and part.image_paths == [train.image_paths[3], train.image_paths[0]]
    np.testing.assert_array_equal(part.signals, train.signals[[3, 0]])
    assert train.subset(np.array([True, False, False, True])).n_images == 2


def _write_meg(root, subject=1, ch_types=None, nan_rows=(), names=("MLC11-1609", "MLO11-1609", "MRO12-1609", "MZO01-1609")):
    """A THINGS-MEG tree: flat test paths as in the real CSV, images in the THINGS database layout."""
    rows = []
    for concept in ("zebra", "aardvark", "yak"):  # yak is also a test concept: its training images must go
        rows += [("exp", f"images_meg/{concept}/{concept}_{k:02d}b.jpg") for k in (2, 1)]
    rows += [("test", "images_test_meg/yak_13s.jpg"), ("test", "images_test_meg/coat_rack_07s.jpg")] * 3
    rows += [("catch", "images_catch_meg/catch_01.jpg")] * 2
    order = np.random.default_rng(0).permutation(len(rows))  # presentation order is shuffled
    table = pd.DataFrame([rows[i] for i in order], columns=["trial_type", "image_path"])
    table.insert(0, "session_nr", 1)
    table["things_image_nr"] = np.arange(len(table))
    (root / "sourcedata").mkdir(parents=True)
    table.to_csv(root / "sourcedata" / f"sample_attributes_P{subject}.csv", index=False)
    for path in table.image_path[table.trial_type != "catch"].unique():
        name = path.split("/")[-1]
        concept = path.split("/")[1] if path.count("/") == 2 else name.rsplit("_", 1)[0]
        image = root / "images_meg" / concept / name
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"jpg")
    info = mne.create_info(list(names), sfreq=200.0, ch_types=ch_types or "mag")
    values = np.arange(len(table), dtype=np.float64)[:, None, None] + np.zeros((1, len(names), 29))
    values[list(nan_rows), 0, 0] = np.nan
    epochs = mne.EpochsArray(values, info, tmin=-0.1, verbose=False)
    (root / "derivatives" / "preprocessed").mkdir(parents=True)
    epochs.save(root / "derivatives" / "preprocessed" / f"preprocessed_P{subject}-epo.fif", verbose=False)
    return table


@pytest.fixture
def meg_root(tmp_path):
    root = tmp_path / "meg"
    return root, _write_meg(root)


def test_meg_reads_the_published_format(meg_root):
    root, table = meg_root
    test = data.load_things_meg(root, subject=1, split="test", progress=False)
    assert test.signals.dtype == np.float32 and test.signals.shape == (2, 3, 4, 29)
    assert (test.split, test.dataset, test.ch_type, test.sfreq) == ("test", "things-meg", "mag", 200.0)
    np.testing.assert_allclose(test.times, -0.1 + np.arange(29) / 200.0)
    assert test.concepts == ["coat_rack", "yak"]
    assert [p.relative_to(root).as_posix() for p in test.image_paths] == ["images_meg/coat_rack/coat_rack_07s.jpg",
                                                                           "images_meg/yak/yak_13s.jpg"]
    for i, name in enumerate(["coat_rack_07s.jpg", "yak_13s.jpg"]):  # each repetition is an epoch of that image
        epoch_rows = test.signals[i, :, 0, 0].astype(int)
        assert list(epoch_rows) == sorted(epoch_rows)  # repetitions in presentation order
        assert set(table.image_path[epoch_rows]) == {f"images_test_meg/{name}"}
        assert set(table.trial_type[epoch_rows]) == {"test"}

    train = data.load_things_meg(root, subject=1, split="train", progress=False)
    assert train.signals.shape == (4, 1, 4, 29)
    assert train.concepts == ["aardvark", "aardvark", "zebra", "zebra"]
    assert [p.name for p in train.image_paths] == ["aardvark_01b.jpg", "aardvark_02b.jpg", "zebra_01b.jpg", "zebra_02b.jpg"]
    rows = train.signals[:, 0, 0, 0].astype(int)
    assert list(table.image_path[rows]) == [p.relative_to(root).as_posix() for p in train.image_paths]
    assert not set(train.concepts) & set(test.concepts)


def test_meg_reading_in_chunks_keeps_every_epoch_in_place(meg_root, monkeypatch):
    root, _ = meg_root
    whole = data.load_things_meg(root, split="test", progress=False)
    monkeypatch.setattr(data, "MEG_READ_CHUNK", 4)
    np.testing.assert_array_equal(data.load_things_meg(root, split="test", progress=False).signals, whole.signals)


def test_meg_image_root_may_differ(meg_root, tmp_path):
    root, _ = meg_root
    (root / "images_meg").rename(tmp_path / "images_meg")
    test = data.load_things_meg(root, split="test", image_root=tmp_path, progress=False)
    assert test.image_paths[1] == (tmp_path / "images_meg" / "yak" / "yak_13s.jpg").resolve()


def test_brain_dataset_mean_single_and_features(eeg_root):
    train = data.load_things_eeg2(eeg_root)
    by_path = data.BrainDataset(train)
    condition, signal = by_path[1]
    assert condition == str(train.image_paths[1]) and signal.dtype == torch.float32
    torch.testing.assert_close(signal, torch.from_numpy(train.signals[1].mean(axis=0)))

    tokens, pooled = torch.randn(4, 3, 8), torch.randn(4, 5)
    single = data.BrainDataset(train, features=(tokens, pooled), trials="single", seed=3)
    (t, p), _ = single[2]
    torch.testing.assert_close(t, tokens[2])
    torch.testing.assert_close(p, pooled[2])

    def draws(dataset, n=40):
        return [int(dataset[2][1][0, 0]) for _ in range(n)]  # value 1000 * row + 100 * repetition

    first = draws(data.BrainDataset(train, trials="single", seed=3))
    assert {d // 1000 for d in first} == {2} and len({d % 1000 // 100 for d in first}) == 4
    assert draws(data.BrainDataset(train, trials="single", seed=3)) == first  # reproducible with the seed
    assert draws(data.BrainDataset(train, trials="single", seed=4)) != first
    with pytest.raises(ValueError, match="rows"):
        data.BrainDataset(train, features=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="one of .'mean', 'single'."):
        data.BrainDataset(train, trials="median")


def test_brain_dataset_state_continues_the_single_trial_draws(eeg_root):
    train = data.load_things_eeg2(eeg_root)

    def draws(dataset, n):
        return [int(dataset[i % 3][1][0, 0]) for i in range(n)]  # value 1000 * row + 100 * repetition

    uninterrupted = draws(data.BrainDataset(train, trials="single", seed=3), 60)
    interrupted = data.BrainDataset(train, trials="single", seed=3)
    before = draws(interrupted, 30)
    state = interrupted.state_dict()
    draws(interrupted, 5)  # the copy handed out does not move with the dataset
    resumed = data.BrainDataset(train, trials="single", seed=3)
    resumed.load_state_dict(state)
    assert before + draws(resumed, 30) == uninterrupted
    assert draws(data.BrainDataset(train, trials="single", seed=3), 30) != uninterrupted[30:]  # the counts matter
    with pytest.raises(ValueError, match="draws of 2 images, but this dataset has 4"):
        resumed.load_state_dict({"draws": np.zeros(2)})


# ----------------------------------------------------------------------------- the synthetic world


def test_synthetic_eeg_round_trip(tiny_eeg_root):
    root = tiny_eeg_root
    for split, word in (("train", "training"), ("test", "test")):
        record = safe_pickle.load_npy(root / "preprocessed_data" / "sub-01" / f"preprocessed_eeg_{word}.npy").item()
        assert set(record) == set(data.EEG_KEYS)
        brain = data.load_things_eeg2(root, subject=1, split=split)
        assert brain.signals.dtype == np.float32 and brain.signals.ndim == 4 and brain.signals.shape[2:] == (17, 100)
        assert brain.ch_names == list(data.EEG_CHANNELS) and brain.sfreq == 100.0 and brain.ch_type == "eeg"
        np.testing.assert_allclose(brain.times, EEG_TIMES, atol=1e-9)
        np.testing.assert_array_equal(brain.signals, np.asarray(record["preprocessed_eeg_data"], dtype=np.float32))
        folder = root / "image_set" / f"{word}_images"
        listed = [image for concept in sorted(folder.iterdir()) for image in sorted(concept.glob("*.jpg"))]
        assert brain.image_paths == listed
        truth = pd.read_csv(root / "ground_truth" / "images.csv")
        assert sorted(truth.image_path[truth.split == split]) == sorted(p.relative_to(root).as_posix() for p in listed)


def test_synthetic_meg_round_trip(tiny_meg_root):
    root = tiny_meg_root
    epochs = mne.read_epochs(root / "derivatives" / "preprocessed" / "preprocessed_P1-epo.fif", preload=False, verbose=False)
    table = pd.read_csv(root / "sourcedata" / "sample_attributes_P1.csv")
    assert len(epochs) == len(table) and set(table.trial_type) <= {"exp", "test", "catch"}
    test = data.load_things_meg(root, subject=1, split="test", progress=False)
    train = data.load_things_meg(root, subject=1, split="train", progress=False)
    for brain in (test, train):
        assert brain.signals.dtype == np.float32 and brain.signals.shape[2:] == (271, 281)
        assert brain.ch_names == epochs.ch_names and brain.ch_type == "mag" and brain.sfreq == 200.0
        np.testing.assert_allclose(brain.times, -0.1 + np.arange(281) / 200.0, atol=1e-9)
        assert all(p.is_file() for p in brain.image_paths)
    assert train.n_repetitions == 1 and test.n_repetitions > 1
    assert test.n_images * test.n_repetitions == (table.trial_type == "test").sum()
    assert not set(train.concepts) & set(test.concepts)
    # An independent reference: the epochs of the first test image, found by its file name.
    rows = np.flatnonzero((table.trial_type == "test") & (table.image_path.str.split("/").str[-1] == test.image_paths[0].name))
    np.testing.assert_allclose(test.signals[0], epochs.get_data(item=rows).astype(np.float32))


def test_things_format_names_the_files_of_the_hand_written_trees(eeg_root, meg_root, tmp_path):
    # The fixtures above are written from the published layout, not from things_format: its paths must be theirs.
    assert things_format.eeg2_data_path(eeg_root, 1, "train").is_file()
    assert things_format.eeg2_data_path(eeg_root, 1, "test") == eeg_root / "preprocessed_data/sub-01/preprocessed_eeg_test.npy"
    assert (eeg_root / things_format.eeg2_image_folder("test") / "00002_yak" / "yak_06s.jpg").is_file()
    root, _ = meg_root
    assert all(path.is_file() for path in things_format.meg_paths(root, 1))
    assert (things_format.detect_dataset(eeg_root), things_format.detect_dataset(root)) == ("things-eeg2", "things-meg")
    assert things_format.detect_dataset(tmp_path / "neither") is None


def test_sampling_rate_and_float_arrays_check_what_they_are_given():
    assert arrays.sampling_rate(EEG_TIMES) == 100.0
    with pytest.raises(ValueError, match="evenly spaced"):
        arrays.sampling_rate(np.r_[EEG_TIMES[:50], EEG_TIMES[50:] + 0.003])
    with pytest.raises(ValueError, match="at least two"):
        arrays.sampling_rate(EEG_TIMES[:1])
    half = torch.tensor([[0.5, -2.0], [3.0, 0.25]], dtype=torch.bfloat16)  # exact in bf16
    converted = arrays.as_float_array(half, "half")
    assert converted.dtype == np.float64 and converted.tolist() == [[0.5, -2.0], [3.0, 0.25]]
    assert arrays.as_float_array(np.ones(3, np.float32), "x").dtype == np.float32  # no needless copy to float64
    with pytest.raises(ValueError, match=r"signals contains 1 NaN or infinite values \(first at index \(1, 0\)\)"):
        arrays.as_float_array(np.array([[0.0], [np.inf]]), "signals")
    with pytest.raises(ValueError, match=r"signals must have shape \(C, T\)"):
        arrays.as_float_array(np.zeros(3), "signals", ("C", "T"))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("loader, command, modality", [
    (data.load_things_eeg2, "i2b data download things-eeg2", "eeg"),
    (data.load_things_meg, "i2b data download things-meg", "meg")])
def test_missing_folder_names_both_commands(tmp_path, loader, command, modality):
    with pytest.raises(FileNotFoundError) as caught:
        loader(tmp_path / "nowhere")
    assert command in str(caught.value) and f"i2b data synth --modality {modality}" in str(caught.value)


def test_missing_subject_files_name_both_commands(eeg_root, meg_root):
    with pytest.raises(FileNotFoundError, match="sub-02.*i2b data download things-eeg2.*i2b data synth --modality eeg"):
        data.load_things_eeg2(eeg_root, subject=2)
    with pytest.raises(FileNotFoundError, match="P3-epo.fif.*i2b data download things-meg.*i2b data synth --modality meg"):
        data.load_things_meg(meg_root[0], subject=3)


def test_nonexistent_subject_and_split(eeg_root, meg_root):
    for subject in (0, 11):
        with pytest.raises(ValueError, match="subjects 1-10"):
            data.load_things_eeg2(eeg_root, subject=subject)
    with pytest.raises(ValueError, match="subjects 1-4"):
        data.load_things_meg(meg_root[0], subject=5)
    with pytest.raises(ValueError, match="'train'.*'test'"):
        data.load_things_eeg2(eeg_root, split="validation")


def test_eeg_wrong_shape_and_missing_keys(eeg_root):
    path = _rewrite_eeg(eeg_root, preprocessed_eeg_data=np.zeros((4, 4, 16, 100)))
    with pytest.raises(ValueError, match=r"preprocessed_eeg_training.npy.*\(4, 4, 16, 100\).*expected.*n_channels=17"):
        data.load_things_eeg2(eeg_root)
    _rewrite_eeg(eeg_root, preprocessed_eeg_data=np.zeros((5, 4, 17, 100)))
    with pytest.raises(ValueError, match="n_images=4"):
        data.load_things_eeg2(eeg_root)
    _rewrite_eeg(eeg_root, times=None)
    with pytest.raises(ValueError, match=f"{path.name}.*keys.*times"):
        data.load_things_eeg2(eeg_root)
    path.write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=f"{path.name} is not a readable .npy file"):
        data.load_things_eeg2(eeg_root)


def test_eeg_nan_and_inf_are_counted(eeg_root):
    signals = _eeg_signals(4, 4)
    signals[0, 0, 0, :2] = np.nan
    signals[3, 1, 2, 7] = np.inf
    _rewrite_eeg(eeg_root, preprocessed_eeg_data=signals)
    with pytest.raises(ValueError, match="preprocessed_eeg_training.npy: 3 of 27200 values are NaN or Inf"):
        data.load_things_eeg2(eeg_root)


def test_eeg_unknown_channels_are_listed(eeg_root):
    names = list(data.EEG_CHANNELS)
    names[3], names[9] = "Foo", "XX9"
    _rewrite_eeg(eeg_root, ch_names=names)
    with pytest.raises(ValueError, match=r"\['Foo', 'XX9'\] are not in the 10-20 montage"):
        data.load_things_eeg2(eeg_root)


def test_eeg_missing_image_folder(eeg_root):
    import shutil

    shutil.rmtree(eeg_root / "image_set" / "test_images")
    with pytest.raises(FileNotFoundError, match="test_images.*i2b data download things-eeg2"):
        data.load_things_eeg2(eeg_root, split="test")


def test_meg_non_magnetometer_channels_are_listed(tmp_path):
    _write_meg(tmp_path, ch_types=["mag", "eeg", "mag", "grad"])
    with pytest.raises(ValueError, match=r"magnetometer.*\['MLO11-1609', 'MZO01-1609'\]"):
        data.load_things_meg(tmp_path, progress=False)


def test_meg_unknown_channels_are_listed(tmp_path):
    _write_meg(tmp_path, names=["MLC11-1609", "EEG001", "MRO12-1609", "XYZ99"])
    with pytest.raises(ValueError, match=r"preprocessed_P1-epo.fif: channels \['EEG001', 'XYZ99'\] are not in the CTF-275 helmet"):
        data.load_things_meg(tmp_path, progress=False)


def test_meg_nan_is_counted(tmp_path):
    table = _write_meg(tmp_path / "clean")  # same seed, same table: find two test epochs, then damage them
    _write_meg(tmp_path / "damaged", nan_rows=np.flatnonzero(table.trial_type == "test")[:2])
    with pytest.raises(ValueError, match="preprocessed_P1-epo.fif: 2 of .* NaN or Inf"):
        data.load_things_meg(tmp_path / "damaged", split="test", progress=False)
    data.load_things_meg(tmp_path / "damaged", split="train", progress=False)  # the damaged epochs are not read here


def test_meg_missing_image_is_named(meg_root):
    root, _ = meg_root
    (root / "images_meg" / "zebra" / "zebra_02b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="images_meg/zebra/zebra_02b.jpg"):
        data.load_things_meg(root, progress=False)


def test_meg_bad_csv(meg_root):
    root, table = meg_root
    csv = root / "sourcedata" / "sample_attributes_P1.csv"
    table.drop(columns="image_path").to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"sample_attributes_P1.csv.*missing \['image_path'\]"):
        data.load_things_meg(root, progress=False)
    table.iloc[:-1].to_csv(csv, index=False)
    with pytest.raises(ValueError, match="holds 14 epochs.*13 rows"):
        data.load_things_meg(root, progress=False)
