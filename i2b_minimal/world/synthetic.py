"""The offline world: drawn images with captions, and the files a simulated brain writes.

Every image is a single shape drawn with PIL from six categorical attributes
(shape, colour, size, position, texture, background), and its caption names all
six. A *concept* fixes the shape, colour, texture and background (so
"red_striped_circle_on_dark" is a concept, like "aardvark" in THINGS); its
images vary the size and the position. The simulated brain (``brain.py``)
responds to those attributes, and this module writes its responses in the exact
on-disk formats of THINGS-EEG2 (Gifford et al. 2022) and THINGS-MEG (Hebart et
al. 2023), so that the real loaders read the synthetic world unchanged.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from . import brain, head, markers, mvnn, pictures
from i2b_minimal.datasets import things_format
from i2b_minimal.runtime import atomic_path, atomic_write, data_dir

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "diamond", "star", "cross",
              "hexagon", "pentagon", "crescent", "arrow", "heart", "ellipse"),
    "colour": ("red", "orange", "yellow", "lime", "green", "teal",
               "cyan", "blue", "purple", "magenta", "pink", "brown"),
    "size": ("small", "medium", "large"),
    "position": ("left", "centre", "right", "upper left", "upper right", "lower left", "lower right"),
    "texture": ("solid", "striped", "dotted", "checked", "outlined", "wavy"),
    "background": ("light", "dark", "grey", "gradient"),
}

# The attributes a concept fixes; its images vary the others (size, position).
CONCEPT_ATTRIBUTES = ("colour", "texture", "shape", "background")
IMAGE_SIZE = 128
JPEG_QUALITY = 90


def horizontal_side(position: str) -> int:
    """-1 for a stimulus left of fixation, 0 centred, +1 right (what drives laterality)."""
    return pictures.POSITION_XY[position][0]


def sample_attributes(rng: np.random.Generator, n: int) -> list[dict[str, str]]:
    """``n`` attribute dicts, each value drawn uniformly from its vocabulary."""
    return [{name: str(values[rng.integers(len(values))]) for name, values in ATTRIBUTES.items()} for _ in range(n)]


def concept_name(attributes: dict) -> str:
    """The concept (folder) name, lowercase with underscores, e.g. ``red_striped_circle_on_dark``."""
    return f"{attributes['colour']}_{attributes['texture']}_{attributes['shape']}_on_{attributes['background']}"


def all_concepts() -> list[dict[str, str]]:
    """Every concept of the world (3456 of them), as dicts of the attributes a concept fixes."""
    values = [ATTRIBUTES[name] for name in CONCEPT_ATTRIBUTES]
    return [dict(zip(CONCEPT_ATTRIBUTES, combo)) for combo in itertools.product(*values)]


def caption(attributes: dict) -> str:
    """E.g. "a small red striped circle on the left, on a dark background"."""
    position = attributes["position"]
    where = "on the " + position if position in ("left", "right") else "in the " + position
    return (f"a {attributes['size']} {attributes['colour']} {attributes['texture']} {attributes['shape']} "
            f"{where}, on a {attributes['background']} background")


def draw_image(attributes: dict, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw the RGB picture an attribute dict describes; the same attributes always give the same pixels."""
    for name, values in ATTRIBUTES.items():
        if attributes.get(name) not in values:
            raise ValueError(f"attribute {name}={attributes.get(name)!r} is not one of {values}")
    return pictures.render(attributes, size)


# ----------------------------------------------------------------------------- datasets

N_SUBJECTS = {"eeg": 10, "meg": 4}
# Per preset: EEG concepts x images (x repetitions) as in THINGS-EEG2's training and test sets;
# MEG concepts x sessions (one exemplar of each concept per session), test concepts, catch images.
PRESETS = {
    "eeg": {
        "tiny": dict(train_concepts=24, images_per_concept=4, train_reps=4, test_concepts=16, test_reps=20),
        "small": dict(train_concepts=200, images_per_concept=8, train_reps=4, test_concepts=100, test_reps=40),
        "full": dict(train_concepts=1654, images_per_concept=10, train_reps=4, test_concepts=200, test_reps=80),
    },
    "meg": {
        "tiny": dict(concepts=12, sessions=3, test_concepts=6, catch=2),
        "small": dict(concepts=100, sessions=6, test_concepts=50, catch=4),
        "full": dict(concepts=1854, sessions=12, test_concepts=200, catch=200),
    },
}


def _check_request(modality: str, preset: str, subjects) -> list[int]:
    if modality not in PRESETS:
        raise ValueError(f"modality must be 'eeg' or 'meg', not {modality!r}")
    if preset not in PRESETS[modality]:
        raise ValueError(f"preset must be one of {sorted(PRESETS[modality])}, not {preset!r}")
    n = N_SUBJECTS[modality]
    subjects = list(range(1, n + 1)) if subjects is None else [int(s) for s in subjects]
    bad = [s for s in subjects if not 1 <= s <= n]
    if bad or not subjects:
        raise ValueError(f"{modality.upper()} subjects are numbered 1-{n}; got {bad or subjects}")
    return subjects


def _concept_images(rng: np.random.Generator, concept: dict, n_images: int) -> list[dict]:
    """``n_images`` distinct pictures of one concept: it fixes colour, texture, shape and background."""
    variants = list(itertools.product(ATTRIBUTES["size"], ATTRIBUTES["position"]))
    picks = rng.choice(len(variants), size=n_images, replace=False)
    return [dict(concept, size=variants[i][0], position=variants[i][1]) for i in picks]


def _eeg_images(rng: np.random.Generator, spec: dict) -> list[dict]:
    """Rows of ``images.csv`` for THINGS-EEG2: training then test images, in the data's row order."""
    universe = all_concepts()
    chosen = [universe[i] for i in rng.choice(len(universe), spec["train_concepts"] + spec["test_concepts"], replace=False)]
    rows = []
    for split, concepts, per_concept in (("train", chosen[:spec["train_concepts"]], spec["images_per_concept"]),
                                         ("test", chosen[spec["train_concepts"]:], 1)):
        for folder, concept in enumerate(sorted(concepts, key=concept_name), start=1):
            name = concept_name(concept)
            for number, attributes in enumerate(_concept_images(rng, concept, per_concept), start=1):
                path = things_format.eeg2_image_path(split, folder, name, number)
                rows.append(dict(split=split, image_path=path, concept=name, **attributes))
    return rows


def jpeg_bytes(attributes: dict) -> bytes:
    """The image file the datasets store for ``attributes``: drawn at ``IMAGE_SIZE`` px, JPEG at ``JPEG_QUALITY``."""
    buffer = io.BytesIO()
    draw_image(attributes, IMAGE_SIZE).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def dataset_image(attributes: dict) -> Image.Image:
    """The picture as a dataset image file holds it once read (compression included): what the tiny CLIP learns on."""
    return Image.open(io.BytesIO(jpeg_bytes(attributes))).convert("RGB")


def _write_images(root: Path, rows: list[dict], progress: bool) -> None:
    for row in tqdm(rows, desc="drawing images", unit="img", disable=not progress):
        # Atomic, like every other file: a notebook may read the images of a world that is being remade.
        with atomic_path(root / row["image_path"]) as tmp:
            tmp.write_bytes(jpeg_bytes(row))


def _write_ground_truth(root: Path, subject: int, responses: np.ndarray, whitening=None) -> None:
    folder = root / "ground_truth" / f"sub-{subject:02d}"
    with atomic_write(folder / "responses.npy") as handle:
        np.save(handle, responses.astype(np.float32))
    if whitening is not None:  # EEG: what turns volts into the data's units (``fresh_trials`` draws with it)
        with atomic_write(folder / "whitening.npy") as handle:
            np.save(handle, whitening)


def _write_captions(root: Path, rows: list[dict]) -> None:
    table = pd.DataFrame(rows)
    table.insert(3, "caption", [caption(row) for row in rows])
    columns = ["split", "image_path", "concept", "caption", *ATTRIBUTES]
    with atomic_write(root / "ground_truth" / "images.csv", "w") as handle:
        table[columns].to_csv(handle, index=False)


def _make_eeg(root: Path, spec: dict, seed: int, subjects: list[int], progress: bool) -> None:
    rows = _eeg_images(np.random.default_rng([seed, 2]), spec)
    _write_images(root, rows, progress)
    features = pictures.image_features(rows)
    is_train = np.array([row["split"] == "train" for row in rows])
    for number in tqdm(subjects, desc="simulating subjects", disable=not progress):
        subject = brain.make_subject("eeg", number)
        rng = np.random.default_rng([seed, 2, number])
        recorded = {}  # split -> (images, repetitions, C, T) in volts
        for split, reps in (("train", spec["train_reps"]), ("test", spec["test_reps"])):
            images = np.flatnonzero(is_train == (split == "train"))
            trials = brain.record(subject, features, rng, shown=np.repeat(images, reps))
            recorded[split] = trials.reshape(len(images), reps, *trials.shape[1:])
        # THINGS-EEG2 whitens each session by MVNN (mvnn.py); the simulation records one session per
        # subject. The truth, the mean trial, is whitened by the same matrix, so that it stays the
        # data's expected value, in the data's units.
        whitening = mvnn.inverse_sqrt(mvnn.noise_covariance(recorded.values()))
        for split, trials in recorded.items():
            things_format.write_eeg2(root, number, split, mvnn.whiten(whitening, trials),
                                     subject.ch_names, subject.times)
        mean_trial = brain.remove_baseline(subject, brain.evoked(subject, features))
        _write_ground_truth(root, number, mvnn.whiten(whitening, mean_trial), whitening)
    _write_captions(root, rows)


def _meg_images(rng: np.random.Generator, spec: dict):
    """Concept names, test concept indices, and every picture keyed as ``meg_design`` keys its trials."""
    universe = all_concepts()
    concepts = sorted((universe[i] for i in rng.choice(len(universe), spec["concepts"], replace=False)), key=concept_name)
    names = [concept_name(c) for c in concepts]
    test_concepts = sorted(int(i) for i in rng.choice(len(concepts), spec["test_concepts"], replace=False))
    images = {}  # (trial_type, concept or catch index, exemplar) -> row of images.csv
    for c, (name, concept) in enumerate(zip(names, concepts)):
        variants = _concept_images(rng, concept, spec["sessions"] + 1)  # the last one is the test image
        for exemplar, attributes in enumerate(variants[:-1], start=1):
            path = things_format.meg_image_path("exp", name, exemplar)
            images["exp", c, exemplar] = dict(split="train", image_path=path, concept=name, **attributes)
        if c in test_concepts:
            path = things_format.meg_image_path("test", name, len(variants))
            images["test", c, len(variants)] = dict(split="test", image_path=path, concept=name, **variants[-1])
    for k, attributes in enumerate(sample_attributes(rng, spec["catch"])):
        path = things_format.meg_image_path("catch", number=k + 1)
        images["catch", k, 0] = dict(split="catch", image_path=path, concept="", **attributes)
    return names, test_concepts, images


def _make_meg(root: Path, spec: dict, seed: int, subjects: list[int], progress: bool) -> None:
    names, test_concepts, images = _meg_images(np.random.default_rng([seed, 3]), spec)
    keys, rows = list(images), list(images.values())
    row_of = {key: i for i, key in enumerate(keys)}
    _write_images(root, rows, progress)
    features = pictures.image_features(rows)
    pictured = [i for i, key in enumerate(keys) if key[0] != "catch"]  # every analysis drops catch trials
    pictured_features = {name: values[pictured] for name, values in features.items()}
    info = head.sensor_info("meg")
    for number in tqdm(subjects, desc="simulating subjects", disable=not progress):
        subject = brain.make_subject("meg", number)
        rng = np.random.default_rng([seed, 3, number])
        design = things_format.meg_design(rng, names, spec["sessions"], test_concepts, spec["catch"])
        trials = brain.record(subject, features, rng, shown=design["image_key"].map(row_of).to_numpy())
        things_format.write_meg(root, number, brain.zscore(subject, trials), info, float(subject.times[0]), design)
        del trials  # the full preset's trials take 16.5 GB
        # Saved in the units of the data: what averaging infinitely many z-scored repetitions gives.
        truth = brain.zscored_ground_truth(subject, brain.evoked(subject, pictured_features))
        _write_ground_truth(root, number, truth)
    _write_captions(root, [rows[i] for i in pictured])


def make_dataset(root=None, modality: str = "eeg", preset: str = "tiny", seed: int = 0, subjects=None,
                 progress: bool = True) -> Path:
    """Write the synthetic world in the THINGS-EEG2 or THINGS-MEG tree under ``root``; return ``root``.

    ``root=None`` writes to ``synthetic-<modality>-<preset>`` under :func:`runtime.data_dir`
    (``$I2B_DATA_DIR``, else the repository's ``data/``, else ``./data``). ``subjects`` (default: all,
    10 for EEG and 4 for MEG) picks which subjects' files to write; the images are shared.
    The same seed gives byte-identical files. Besides the THINGS files it writes
    ``ground_truth/images.csv`` (one row per image: split, image_path, concept, caption,
    attributes) and ``ground_truth/sub-XX/responses.npy`` (the noiseless response to every
    image, rows aligned with images.csv; for MEG in the units of the z-scored epochs, see
    ``brain.zscored_ground_truth``), for EEG ``ground_truth/sub-XX/whitening.npy`` (the subject's
    MVNN matrix, C x C float64, that took its trials from volts to the data's units), and last,
    for each subject, the marker that :func:`ensure_dataset` trusts. The EEG data and truth are
    whitened by each subject's multivariate noise normalisation (``mvnn.py``), as THINGS-EEG2's are. The full MEG
    preset holds 27048 epochs of 271 x 281 per subject in memory as float64 (about 16.5 GB).
    """
    subjects = _check_request(modality, preset, subjects)
    root = _root(root, modality, preset)
    root.mkdir(parents=True, exist_ok=True)
    maker = _make_eeg if modality == "eeg" else _make_meg
    maker(root, PRESETS[modality][preset], seed, subjects, progress)
    for number in subjects:
        markers.write(root, number, modality, preset, seed)
    return root


def ensure_dataset(root=None, modality: str = "eeg", preset: str = "tiny", subjects=None, seed: int = 0,
                   progress: bool = True) -> Path:
    """The synthetic world at ``root``, written only where it is missing; return ``root``.

    What a notebook calls first. Arguments as for :func:`make_dataset`. A subject
    counts as written when its marker ``ground_truth/sub-XX/complete.json`` exists:
    :func:`make_dataset` writes it after every other file, so an interrupted run is
    redone, not trusted. The subjects without one are written (the shared images
    again too, byte-identical for the same seed). A subject written with another
    preset or seed is an error, not silently reused. One written by another version
    of the simulation (``markers.GENERATOR_VERSION``) is written again, with a warning:
    same preset and seed, so the same images, but other trials.
    """
    subjects = _check_request(modality, preset, subjects)
    root = _root(root, modality, preset)
    missing = markers.to_write(root, subjects, modality, preset, seed)
    if missing:
        make_dataset(root, modality, preset, seed, missing, progress)
    return root


def _root(root, modality: str, preset: str) -> Path:
    return Path(root) if root is not None else data_dir() / f"synthetic-{modality}-{preset}"


def load_captions(root) -> pd.DataFrame:
    """The ``ground_truth/images.csv`` table of a synthetic dataset: one row per image."""
    path = Path(root) / "ground_truth" / "images.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: captions exist only for synthetic data; "
                                f"write some with `i2b data synth --out {root}`")
    return pd.read_csv(path)


def image_rows(root, image_paths) -> list[int]:
    """The rows of ``ground_truth/images.csv`` (and of each subject's responses) of the images at ``image_paths``."""
    root = Path(root)
    row_of = {(root / path).resolve(): i for i, path in enumerate(load_captions(root)["image_path"])}
    missing = [str(p) for p in image_paths if Path(p).resolve() not in row_of]
    if missing:
        raise ValueError(f"{len(missing)} image(s) are not in {root / 'ground_truth' / 'images.csv'}, e.g. {missing[0]}")
    return [row_of[Path(p).resolve()] for p in image_paths]


def load_ground_truth(root, subject: int, image_paths) -> np.ndarray:
    """The noiseless responses (n, C, T) of ``subject`` to the images at ``image_paths`` (as BrainData gives them)."""
    root = Path(root)
    rows = image_rows(root, image_paths)
    path = root / "ground_truth" / f"sub-{subject:02d}" / "responses.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: subject {subject} was not written; "
                                f"write it with `i2b data synth --subjects {subject} --out {root}`")
    return np.asarray(np.load(path, mmap_mode="r")[rows])
