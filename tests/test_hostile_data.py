"""Silently wrong or broken data (issue 13): each is refused with a message naming the file and what is wrong."""

import shutil

import mne
import numpy as np
import pandas as pd
import pytest

from i2b_minimal import data, things_format
from i2b_minimal.datasets import safe_pickle


@pytest.fixture
def eeg_copy(tmp_path, tiny_eeg_root):
    root = tmp_path / "eeg"
    shutil.copytree(tiny_eeg_root, root, ignore=shutil.ignore_patterns("features"))
    return root


@pytest.fixture
def meg_copy(tmp_path, tiny_meg_root):
    root = tmp_path / "meg"
    shutil.copytree(tiny_meg_root, root, ignore=shutil.ignore_patterns("features"))
    return root


def _rewrite_eeg(root, **changes):
    path = things_format.eeg2_data_path(root, 1, "test")
    record = {**safe_pickle.load_npy(path).item(), **changes}
    np.save(path, record)  # as a careless hand would
    return path


def test_duplicated_channel_names_are_refused(eeg_copy):
    names = list(data.EEG_CHANNELS)
    names[1] = names[0]
    path = _rewrite_eeg(eeg_copy, ch_names=names)
    with pytest.raises(ValueError, match=rf"{path}: channel names \['Pz'\] appear more than once"):
        data.load_things_eeg2(eeg_copy, split="test")


def test_times_in_milliseconds_are_refused(eeg_copy):
    times = safe_pickle.load_npy(things_format.eeg2_data_path(eeg_copy, 1, "test")).item()["times"]
    _rewrite_eeg(eeg_copy, times=times * 1000)
    with pytest.raises(ValueError, match=r"sampling rate of 0\.1 Hz; times must be in seconds.*milliseconds"):
        data.load_things_eeg2(eeg_copy, split="test")


def test_complex_data_is_refused(eeg_copy):
    signals = safe_pickle.load_npy(things_format.eeg2_data_path(eeg_copy, 1, "test")).item()["preprocessed_eeg_data"]
    _rewrite_eeg(eeg_copy, preprocessed_eeg_data=signals + 1j)
    with pytest.raises(ValueError, match=r"preprocessed_eeg_data holds complex128 values; expected real numbers"):
        data.load_things_eeg2(eeg_copy, split="test")


def test_a_missing_image_names_its_concept_folder(eeg_copy):
    folder = sorted((eeg_copy / things_format.eeg2_image_folder("train")).iterdir())[1]
    next(folder.iterdir()).unlink()
    with pytest.raises(ValueError, match=rf"check {folder} \(\d+ images, most have \d+\)"):
        data.load_things_eeg2(eeg_copy, split="train")


def test_a_zero_byte_epochs_file_is_named(meg_copy):
    fif, _ = things_format.meg_paths(meg_copy, 1)
    fif.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{fif} is not a readable MNE epochs file"):
        data.load_things_meg(meg_copy, split="test", progress=False)


def test_a_missing_image_path_in_the_csv_is_named(meg_copy):
    _, csv = things_format.meg_paths(meg_copy, 1)
    table = pd.read_csv(csv)
    table.loc[3, "image_path"] = np.nan
    table.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=rf"{csv}: 1 rows have no trial_type or image_path \(first: data row 4\)"):
        data.load_things_meg(meg_copy, split="test", progress=False)


def test_a_shuffled_csv_is_caught_against_the_epochs(meg_copy):
    fif, csv = things_format.meg_paths(meg_copy, 1)
    table = pd.read_csv(csv)
    table.sample(frac=1.0, random_state=0).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=rf"{csv} does not follow the order of the epochs in {fif}"):
        data.load_things_meg(meg_copy, split="test", progress=False)


def test_a_shuffled_csv_is_caught_by_event_codes_without_metadata(meg_copy):
    fif, csv = things_format.meg_paths(meg_copy, 1)
    epochs = mne.read_epochs(fif, preload=True, verbose=False)
    epochs.metadata = None
    epochs.save(fif, overwrite=True, verbose=False)
    table = pd.read_csv(csv)
    order = np.argsort(table["trial_type"].to_numpy(), kind="stable")  # all 'catch' first: the types no longer match
    table.iloc[order].to_csv(csv, index=False)
    with pytest.raises(ValueError, match="name another trial type than the epoch they describe"):
        data.load_things_meg(meg_copy, split="test", progress=False)


def test_the_untouched_worlds_still_load(tiny_eeg_root, tiny_meg_root):
    assert data.load_things_eeg2(tiny_eeg_root, split="test").sfreq > 10
    assert data.load_things_meg(tiny_meg_root, split="test", progress=False).n_images > 0
