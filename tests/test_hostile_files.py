"""Hostile and careless data files (issue 13): no data file runs code, every bad file is named in a clear error.

Cases (each one test below): a pickle that calls os.system, one that writes a file
through builtins.exec, one that names a harmless-looking global outside the allowed
set; the real format (as the synthetic writer writes it) and a plain numeric .npy
still load.
"""

import os
import pickle
import re

import numpy as np
import pytest

from i2b_minimal import data
from i2b_minimal.datasets import safe_pickle, things_format


class _CallsSystem:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _CallsExec:
    def __init__(self, source):
        self.source = source

    def __reduce__(self):
        return exec, (self.source,)


def _hostile_npy(path, payload):
    """``payload`` saved as np.save saves a dict: a 0-d object array, pickled after the .npy header."""
    array = np.empty((), dtype=object)
    array[()] = payload
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(array, handle, protocol=3)
    return path


def _eeg_root_with(tmp_path, tiny_eeg_root, payload):
    """A copy of the tiny EEG world's layout whose training file is ``payload``."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(tiny_eeg_root / "image_set", root / "image_set")
    path = things_format.eeg2_data_path(root, 1, "train")
    path.parent.mkdir(parents=True)
    _hostile_npy(path, payload)
    return root, path


def test_a_pickle_calling_os_system_is_refused_and_nothing_runs(tmp_path, tiny_eeg_root):
    witness = tmp_path / "pwned"
    root, path = _eeg_root_with(tmp_path, tiny_eeg_root, {"preprocessed_eeg_data": _CallsSystem(f"touch {witness}")})
    with pytest.raises(safe_pickle.UnsafePickleError, match=rf"{path}.*(posix|os)\.system.*refused"):
        data.load_things_eeg2(root, split="train")
    assert not witness.exists()


def test_a_pickle_writing_a_file_through_exec_is_refused(tmp_path):
    witness = tmp_path / "written"
    path = _hostile_npy(tmp_path / "x.npy", [_CallsExec(f"open({str(witness)!r}, 'w').write('x')")])
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"builtins\.exec"):
        safe_pickle.load_npy(path)
    assert not witness.exists()


def test_any_global_outside_the_allowed_set_is_refused(tmp_path):
    import collections

    path = _hostile_npy(tmp_path / "x.npy", collections.OrderedDict(a=1))
    with pytest.raises(ValueError, match=r"collections\.OrderedDict"):  # also a ValueError: the CLI's kind
        safe_pickle.load_npy(path)


def test_the_published_format_still_loads(tmp_path):
    path = things_format.write_eeg2(tmp_path, 1, "test", np.ones((2, 3, 17, 5)), data.EEG_CHANNELS, np.arange(5) / 100)
    record = safe_pickle.load_npy(path).item()
    assert set(record) == set(data.EEG_KEYS)
    assert record["preprocessed_eeg_data"].dtype == np.float64 and record["ch_names"] == list(data.EEG_CHANNELS)
    scalars = _hostile_npy(tmp_path / "s.npy", {"n": np.float32(2.5), "names": ("a",), "set": {1}})
    assert safe_pickle.load_npy(scalars).item() == {"n": 2.5, "names": ("a",), "set": {1}}


def test_a_plain_numeric_npy_loads_without_pickle(tmp_path):
    np.save(tmp_path / "plain.npy", np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(safe_pickle.load_npy(tmp_path / "plain.npy"), np.arange(6.0).reshape(2, 3))


def test_nothing_in_the_library_or_notebooks_unpickles_user_files_unsafely():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    places = [*repo.glob("i2b_minimal/**/*.py"), *repo.glob("notebooks/*.ipynb"), *repo.glob("book/**/*.md"),
              repo / "README.md", repo / "data" / "README.md"]
    unsafe_call = re.compile(r"np\.load\([^)]*allow_pickle=True")
    unsafe = [str(p.relative_to(repo)) for p in places if p.is_file() and unsafe_call.search(p.read_text())]
    assert unsafe == []
