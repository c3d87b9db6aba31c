"""Loaders for THINGS-EEG2 and THINGS-MEG: one record type, one code path for real and synthetic data.

Both datasets end up as a :class:`BrainData`: ``signals`` of shape
(n_images, n_repetitions, n_channels, n_times), one image path and one concept
per row. The on-disk formats are the published ones (``data/README.md`` draws
them; ``things_format.py`` owns every path), so the synthetic world of
``world/synthetic.py`` and the real downloads load through exactly the same lines.

- THINGS-EEG2 (Gifford et al. 2022): a pickled dict per subject and split; rows
  follow the sorted concept folders, then the sorted images inside each.
- THINGS-MEG (Hebart et al. 2023): MNE epochs in presentation order, joined by
  row to ``sample_attributes_P{n}.csv``; catch trials are dropped, repetitions
  grouped per image, and training concepts that also appear in the test set are
  removed so that train and test share no concept.

Units. Values are returned exactly as stored. The published THINGS-EEG2 data
are whitened by multivariate noise normalisation, and the published THINGS-MEG
epochs are baseline z-scored per trial and channel (the THINGS-data MEG
preprocessing of Hebart et al. 2023 applies ``mne.baseline.rescale(mode="zscore")``
before saving), so both are unitless with roughly unit variance, even though
MNE labels the MEG channels as magnetometers in tesla. Converting them to
femtotesla would multiply z-scores by 1e15; per-channel standardisation with
training statistics belongs to the training pipeline, not to a loader.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path, PurePosixPath

import numpy as np

from . import safe_pickle, things_format
from .file_checks import check_finite, check_same_order, real, sampling_rate_in_seconds, uneven_folders

EEG_CHANNELS = ("Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1",
                "P5", "PO7", "PO3", "POz", "PO4", "PO8", "P6", "P2")
SUBJECTS = {"things-eeg2": range(1, 11), "things-meg": range(1, 5)}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
EEG_KEYS = ("preprocessed_eeg_data", "ch_names", "times")
MEG_COLUMNS = ("trial_type", "image_path")
MEG_READ_CHUNK = 512  # epochs read from disk at a time: 512 x 271 x 281 float64 is 0.3 GB


@dataclasses.dataclass
class BrainData:
    """Brain responses to images: one row per image, all repetitions kept."""

    signals: np.ndarray  # float32 (n_images, n_repetitions, n_channels, n_times)
    image_paths: list[Path]  # absolute, one per row of signals
    concepts: list[str]  # one per row
    ch_names: list[str]
    times: np.ndarray  # seconds, one per sample
    sfreq: float
    ch_type: str  # "eeg" or "mag"
    subject: int
    split: str  # "train" or "test"
    dataset: str  # "things-eeg2" or "things-meg"

    def __post_init__(self):
        n_images, _, n_channels, n_times = self.signals.shape
        if not (len(self.image_paths) == len(self.concepts) == n_images):
            raise ValueError(f"{n_images} signal rows but {len(self.image_paths)} images and {len(self.concepts)} concepts")
        if len(self.ch_names) != n_channels or len(self.times) != n_times:
            raise ValueError(f"signals have {n_channels} channels x {n_times} samples, but "
                             f"{len(self.ch_names)} channel names and {len(self.times)} times")

    @property
    def n_images(self) -> int:
        return self.signals.shape[0]

    @property
    def n_repetitions(self) -> int:
        return self.signals.shape[1]

    def mean_over_repetitions(self) -> np.ndarray:
        """(n_images, n_channels, n_times): the average response, what encoding models predict."""
        return self.signals.mean(axis=1)

    def subset(self, indices) -> BrainData:
        """The same record restricted to some images (an index array, a slice or a boolean mask)."""
        rows = np.arange(self.n_images)[indices]
        return dataclasses.replace(self, signals=self.signals[rows], image_paths=[self.image_paths[i] for i in rows],
                                   concepts=[self.concepts[i] for i in rows])


def load(dataset: str, root, subject: int = 1, split: str = "train") -> BrainData:
    """Dispatch on the dataset name ("things-eeg2"/"eeg" or "things-meg"/"meg")."""
    loaders = {"things-eeg2": load_things_eeg2, "eeg": load_things_eeg2, "things-meg": load_things_meg, "meg": load_things_meg}
    if dataset not in loaders:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(loaders)}")
    return loaders[dataset](root, subject=subject, split=split)


def load_things_eeg2(root, subject: int = 1, split: str = "train") -> BrainData:
    """THINGS-EEG2 (Gifford et al. 2022) for one subject: (16540, 4, 17, 100) train, (200, 80, 17, 100) test."""
    split = _normalise_split(split)
    root = _check_root(root, "things-eeg2", subject)
    path = things_format.eeg2_data_path(root, subject, split)
    _require(path, "things-eeg2", root)
    try:
        record = safe_pickle.load_npy(path)  # the published format is a pickled dict: unpickled without running code
    except safe_pickle.UnsafePickleError:
        raise  # its message already names the file and the refused call
    except (ValueError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path} is not a readable .npy file ({error}); download or write it again") from None
    record = record.item() if record.dtype == object and record.shape == () else record
    if not isinstance(record, dict) or any(key not in record for key in EEG_KEYS):
        found = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{path}: expected a pickled dict with keys {list(EEG_KEYS)}, found {found}")
    signals = np.asarray(record["preprocessed_eeg_data"])
    ch_names = [str(name) for name in record["ch_names"]]
    times = real(np.asarray(record["times"]), f"{path}: times").astype(np.float64)
    image_folder = root / things_format.eeg2_image_folder(split)
    image_paths = _list_images(image_folder, root)
    expected = f"(n_images={len(image_paths)}, n_repetitions, n_channels={len(ch_names)}, n_times={len(times)})"
    if signals.ndim != 4 or signals.shape[0] != len(image_paths) or signals.shape[2:] != (len(ch_names), len(times)):
        raise ValueError(f"{path}: preprocessed_eeg_data has shape {signals.shape}, expected {expected} "
                         f"to match {len(image_paths)} images in {image_folder}{uneven_folders(image_paths)}")
    check_finite(real(signals, f"{path}: preprocessed_eeg_data"), path)
    _check_channels(ch_names, "eeg", path)
    concepts = [re.sub(r"^\d+_", "", image.parent.name) for image in image_paths]  # "00001_aardvark" -> "aardvark"
    return BrainData(signals.astype(np.float32, copy=False), image_paths, concepts, ch_names, times,
                     sampling_rate_in_seconds(times, f"{path}: times"), "eeg", subject, split, "things-eeg2")


def load_things_meg(root, subject: int = 1, split: str = "train", image_root=None,
                    progress: bool = True) -> BrainData:
    """THINGS-MEG (Hebart et al. 2023) for one subject: test (200, 12, 271, 281); train (n, 1, 271, 281).

    ``image_root`` is where ``image_path`` of the CSV is relative to (default:
    ``root``). Test images listed flat as ``images_test_meg/<file>`` are also
    looked up in the THINGS database layout ``images_meg/<concept>/<file>``.
    Only the epochs of the split are read; the real training split takes 6 GB.
    """
    import mne
    import pandas as pd
    from tqdm.auto import tqdm

    split = _normalise_split(split)
    root = _check_root(root, "things-meg", subject)
    image_root = Path(image_root).expanduser().resolve() if image_root is not None else root
    fif, csv = things_format.meg_paths(root, subject)
    _require(fif, "things-meg", root)
    _require(csv, "things-meg", root)
    attributes = pd.read_csv(csv)
    missing = [column for column in MEG_COLUMNS if column not in attributes.columns]
    if missing:
        raise ValueError(f"{csv}: expected columns {list(MEG_COLUMNS)}, missing {missing}")
    empty = np.flatnonzero(attributes[list(MEG_COLUMNS)].isna().any(axis=1).to_numpy())
    if empty.size:
        raise ValueError(f"{csv}: {empty.size} rows have no {' or '.join(MEG_COLUMNS)} (first: data row "
                         f"{empty[0] + 1}); every epoch needs both: download or write the file again")
    # Not preloaded: the full file is 27048 epochs (8 GB as float32); read only the rows this split needs.
    try:
        epochs = mne.read_epochs(fif, preload=False, verbose=False)
    except Exception as error:  # MNE raises many kinds on a truncated or empty file; the file is what matters
        raise ValueError(f"{fif} is not a readable MNE epochs file ({type(error).__name__}: {error}); "
                         f"download or write it again") from None
    if len(epochs) != len(attributes):
        raise ValueError(f"{fif} holds {len(epochs)} epochs but {csv} has {len(attributes)} rows; expected one row per epoch")
    not_mag = [name for name, kind in zip(epochs.ch_names, epochs.get_channel_types(), strict=True) if kind != "mag"]
    if not_mag:
        raise ValueError(f"{fif}: expected only magnetometer ('mag') channels, found other types for {not_mag}")
    _check_channels(epochs.ch_names, "mag", fif)

    table = pd.DataFrame({"row": np.arange(len(attributes)), "trial_type": attributes["trial_type"].astype(str).str.strip(),
                          "image_path": attributes["image_path"].astype(str).str.strip()})
    check_same_order(epochs, table, csv, fif)
    sampling_rate_in_seconds(epochs.times, f"{fif}: times")
    table["concept"] = table["image_path"].map(_meg_concept)
    test_concepts = set(table.loc[table.trial_type == "test", "concept"])
    if split == "test":
        table = table[table.trial_type == "test"]
    else:  # "exp" trials; "catch" trials are dropped with everything else
        table = table[(table.trial_type == "exp") & ~table.concept.isin(test_concepts)]
    if table.empty:
        raise ValueError(f"{csv}: no {split} trials (trial_type 'exp' for train, 'test' for test)")
    table = table.sort_values(["concept", "image_path", "row"])
    groups = table.groupby("image_path", sort=False)["row"].apply(list)
    counts = sorted({len(rows) for rows in groups})
    if len(counts) != 1:
        raise ValueError(f"{csv}: every {split} image must be shown equally often, found repetition counts {counts}")
    rows = np.array(groups.tolist(), dtype=np.int64)  # (n_images, n_repetitions) epoch indices

    image_paths = [_resolve_meg_image(image_root, rel) for rel in groups.index]
    absent = [rel for rel, path in zip(groups.index, image_paths, strict=True) if path is None]
    if absent:
        raise FileNotFoundError(f"{len(absent)} images listed in {csv} are missing under {image_root}, e.g. "
                                f"{image_root / absent[0]}; download them with `i2b data download things-meg`")

    flat = rows.ravel()
    order = np.argsort(flat)
    signals = np.empty((flat.size, len(epochs.ch_names), len(epochs.times)), dtype=np.float32)
    for start in tqdm(range(0, flat.size, MEG_READ_CHUNK), desc=f"reading MEG P{subject} {split}", disable=not progress):
        take = order[start:start + MEG_READ_CHUNK]
        signals[take] = epochs.get_data(item=flat[take], copy=False, verbose=False)
    check_finite(signals, fif)
    signals = signals.reshape(*rows.shape, *signals.shape[1:])
    return BrainData(signals, image_paths, groups.index.map(_meg_concept).tolist(), list(epochs.ch_names),
                     np.asarray(epochs.times, dtype=np.float64), float(epochs.info["sfreq"]), "mag",
                     subject, split, "things-meg")


def _normalise_split(split: str) -> str:
    names = {"train": "train", "training": "train", "test": "test"}
    if split not in names:
        raise ValueError(f"split must be 'train' (or 'training') or 'test', not {split!r}")
    return names[split]


def _how_to_get(dataset: str, root: Path) -> str:
    modality = "eeg" if dataset == "things-eeg2" else "meg"
    return (f"download it with `i2b data download {dataset} --out {root}`, or write the offline synthetic "
            f"world in the same format with `i2b data synth --modality {modality} --out {root}`")


def _check_root(root, dataset: str, subject: int) -> Path:
    valid = SUBJECTS[dataset]
    if not isinstance(subject, (int, np.integer)) or subject not in valid:
        raise ValueError(f"{dataset} has subjects {valid.start}-{valid.stop - 1}; subject {subject!r} does not exist")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist; {_how_to_get(dataset, root)}")
    return root


def _require(path: Path, dataset: str, root: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {_how_to_get(dataset, root)}")


def _list_images(folder: Path, root: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist; {_how_to_get('things-eeg2', root)}")
    # Hidden files are not images of the set: macOS "._" companions, or a writer's temporary files.
    return [image for concept in sorted(p for p in folder.iterdir() if p.is_dir())
            for image in sorted(concept.iterdir())
            if image.suffix.lower() in IMAGE_SUFFIXES and not image.name.startswith(".")]


def _check_channels(ch_names: list[str], ch_type: str, path: Path) -> None:
    from .sensors import unknown_channels

    repeated = sorted({name for name in ch_names if ch_names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: channel names {repeated} appear more than once; each channel needs its own name")
    unknown = unknown_channels(ch_names, ch_type)
    if unknown:
        where = (f"the 10-20 montage; expected names such as {list(EEG_CHANNELS)}" if ch_type == "eeg"
                 else "the CTF-275 helmet; expected THINGS-MEG names such as 'MLC11-4408'")
        raise ValueError(f"{path}: channels {unknown} are not in {where}")


def _meg_concept(image_path: str) -> str:
    """``images_meg/aardvark/aardvark_01b.jpg`` -> aardvark; ``images_test_meg/coat_rack_13s.jpg`` -> coat_rack."""
    parts = PurePosixPath(image_path).parts
    return parts[-2] if len(parts) >= 3 else PurePosixPath(image_path).stem.rsplit("_", 1)[0]


def _resolve_meg_image(image_root: Path, image_path: str) -> Path | None:
    name = PurePosixPath(image_path).name
    for candidate in (image_root / image_path, image_root / things_format.MEG_IMAGE_FOLDER / _meg_concept(image_path) / name):
        if candidate.is_file():
            return candidate
    return None


from .brain_dataset import BrainDataset  # noqa: E402,F401 -- public as data.BrainDataset
