"""The on-disk formats of THINGS-EEG2 and THINGS-MEG: file names, trial designs, writers.

The one owner of where each file lives: the writers here, the loaders
(``loaders.py``), the downloads (``download.py``) and the app's dataset checks
all build their paths with these functions. Knows nothing about how the signals
were made; ``world/synthetic.py`` hands it arrays. The layouts follow the released
datasets (``data/README.md`` draws both trees):

* THINGS-EEG2 (Gifford et al. 2022): one pickled dict per subject and split,
  ``preprocessed_data/sub-XX/preprocessed_eeg_{training,test}.npy``, with
  ``preprocessed_eeg_data`` (images, repetitions, channels, times) in float64 as
  in the release, ``ch_names`` and ``times``; images in numbered concept folders.
* THINGS-MEG (Hebart et al. 2023): MNE epochs in presentation order,
  ``derivatives/preprocessed/preprocessed_P{n}-epo.fif``, and one CSV row per
  epoch in ``sourcedata/sample_attributes_P{n}.csv``. Each of the sessions shows
  one exemplar of every concept, every test image once, and some catch images.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from i2b_minimal.runtime import atomic_write

# Fixed so that the same seed gives byte-identical files.
MEAS_DATE = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
MEG_RUNS_PER_SESSION = 10
MEG_SOA = 1.5  # s between image onsets; each image stays on for 0.5 s


# ----------------------------------------------------------------------------- THINGS-EEG2


EEG2_SPLIT_WORD = {"train": "training", "test": "test"}  # how the release names the two splits


def eeg2_subject_folder(subject: int) -> str:
    """E.g. ``preprocessed_data/sub-01``: one subject's two data files."""
    return f"preprocessed_data/sub-{subject:02d}"


def eeg2_data_path(root: Path, subject: int, split: str) -> Path:
    """E.g. ``<root>/preprocessed_data/sub-01/preprocessed_eeg_training.npy``."""
    return Path(root) / eeg2_subject_folder(subject) / f"preprocessed_eeg_{EEG2_SPLIT_WORD[split]}.npy"


def eeg2_image_folder(split: str) -> str:
    """``image_set/training_images`` or ``image_set/test_images``: numbered concept folders of images."""
    return f"image_set/{EEG2_SPLIT_WORD[split]}_images"


def eeg2_image_path(split: str, folder_number: int, concept: str, image_number: int) -> str:
    """E.g. ``image_set/training_images/00001_aardvark/aardvark_01b.jpg`` (test images end in ``s``)."""
    suffix = "b" if split == "train" else "s"
    return f"{eeg2_image_folder(split)}/{folder_number:05d}_{concept}/{concept}_{image_number:02d}{suffix}.jpg"


def write_eeg2(root: Path, subject: int, split: str, data: np.ndarray, ch_names, times) -> Path:
    """Write one subject's (images, repetitions, channels, times) array as THINGS-EEG2 does."""
    path = eeg2_data_path(root, subject, split)
    record = {"preprocessed_eeg_data": np.asarray(data, dtype=np.float64),
              "ch_names": list(ch_names), "times": np.asarray(times, dtype=np.float64)}
    with atomic_write(path) as handle:
        np.save(handle, record, allow_pickle=True)
    return path


# ----------------------------------------------------------------------------- THINGS-MEG


MEG_IMAGE_FOLDER = "images_meg"  # the THINGS image database: one folder per concept


def meg_image_path(kind: str, concept: str = "", number: int = 0) -> str:
    """``images_meg/<c>/<c>_01b.jpg``, ``images_test_meg/<c>_13s.jpg`` (flat) or ``images_catch_meg/catch001.jpg``."""
    if kind == "exp":
        return f"{MEG_IMAGE_FOLDER}/{concept}/{concept}_{number:02d}b.jpg"
    if kind == "test":
        return f"images_test_meg/{concept}_{number:02d}s.jpg"
    return f"images_catch_meg/catch{number:03d}.jpg"


def meg_design(rng: np.random.Generator, concepts: list[str], n_sessions: int, test_concepts: list[int],
               n_catch: int) -> pd.DataFrame:
    """The sequence of trials one subject saw, one row per epoch, columns as in ``sample_attributes_P{n}.csv``.

    Session ``s`` shows exemplar ``s`` of every concept ('exp'), each test image
    (exemplar ``n_sessions + 1`` of a test concept) once ('test') and ``n_catch``
    catch images ('catch'), shuffled and cut into runs. Besides the CSV columns the
    frame holds ``image_key``: which image it was, for the caller.
    """
    n_concepts = len(concepts)
    rows = []
    for session in range(1, n_sessions + 1):
        trials = [("exp", c, session) for c in range(n_concepts)]
        trials += [("test", c, n_sessions + 1) for c in test_concepts]
        trials += [("catch", k, 0) for k in range(n_catch)]
        order = rng.permutation(len(trials))
        runs = np.array_split(order, MEG_RUNS_PER_SESSION)
        for run_nr, run in enumerate(runs, start=1):
            onsets = np.cumsum(np.full(len(run), MEG_SOA) + rng.uniform(-0.2, 0.2, len(run)))
            for trial_nr, (index, onset) in enumerate(zip(run, onsets), start=1):
                kind, item, exemplar = trials[index]
                is_catch = kind == "catch"
                rows.append({
                    "trial_type": kind,
                    "session_nr": session,
                    "things_category_nr": np.nan if is_catch else item + 1,
                    "things_image_nr": np.nan if is_catch else item * (n_sessions + 1) + exemplar,
                    "things_exemplar_nr": np.nan if is_catch else exemplar,
                    "test_image_nr": test_concepts.index(item) + 1 if kind == "test" else np.nan,
                    "run_nr": run_nr,
                    "trial_nr": trial_nr,
                    "image_path": meg_image_path(kind, "" if is_catch else concepts[item], item + 1 if is_catch else exemplar),
                    "image_on": round(float(onset), 4),
                    "image_off": round(float(onset) + 0.5, 4),
                    "image_key": (kind, item, exemplar),
                })
    return pd.DataFrame(rows)


def meg_epochs_file(subject: int, part: str = "") -> str:
    """E.g. ``derivatives/preprocessed/preprocessed_P1-epo.fif``; MNE splits a large file into ``-epo-1.fif``, ..."""
    return f"derivatives/preprocessed/preprocessed_P{subject}-epo{part}.fif"


def meg_attributes_file(subject: int) -> str:
    """E.g. ``sourcedata/sample_attributes_P1.csv``: one row per epoch of that subject."""
    return f"sourcedata/sample_attributes_P{subject}.csv"


def meg_paths(root: Path, subject: int) -> tuple[Path, Path]:
    """The epochs file and the sample-attributes CSV of one subject under ``root``."""
    return Path(root) / meg_epochs_file(subject), Path(root) / meg_attributes_file(subject)


def detect_dataset(root) -> str | None:
    """"things-eeg2" or "things-meg" from a dataset root's layout (None when it is neither)."""
    root = Path(root)
    if (root / "preprocessed_data").is_dir():
        return "things-eeg2"
    if (root / "derivatives").is_dir():
        return "things-meg"
    return None


def write_meg(root: Path, subject: int, trials: np.ndarray, info, tmin: float, attributes: pd.DataFrame) -> Path:
    """Write epochs (n, 271, 281) in presentation order, and their sample-attributes CSV.

    The values are stored as given; THINGS-MEG's are baseline z-scores, which MNE labels tesla.
    """
    import mne

    epochs_path, csv_path = meg_paths(root, subject)
    attributes = attributes.drop(columns=["image_key"], errors="ignore").reset_index(drop=True)
    kinds = {"exp": 1, "test": 2, "catch": 3}
    events = np.column_stack([np.arange(len(trials)) * 300, np.zeros(len(trials), int),
                              attributes["trial_type"].map(kinds).to_numpy()]).astype(int)
    info = info.copy()
    info.set_meas_date(MEAS_DATE)
    epochs = mne.EpochsArray(trials, info, events=events, tmin=tmin, event_id=kinds, metadata=attributes,
                             verbose=False)
    epochs_path.parent.mkdir(parents=True, exist_ok=True)
    # MNE names split files (large datasets) after the target, so save into a
    # temporary folder beside it and move the finished files into place.
    with tempfile.TemporaryDirectory(dir=epochs_path.parent, prefix=".writing-") as scratch:
        for written in epochs.save(Path(scratch) / epochs_path.name, overwrite=True, verbose=False):
            os.replace(written, epochs_path.parent / Path(written).name)
    with atomic_write(csv_path, "w") as handle:
        attributes.to_csv(handle, index=False)
    return epochs_path
