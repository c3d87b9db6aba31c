"""Completeness markers: which subjects of a synthetic world on disk can be trusted as they are.

``synthetic.make_dataset`` writes a subject's marker, ``ground_truth/sub-XX/complete.json``,
after every other file of it, so a run cut off part-way leaves none and is redone. The
marker records the world (modality, preset, seed: which images) and the version of the
simulation that wrote the trials, so that neither another world nor an older simulation
of this one is taken for the data asked for.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from i2b_minimal.runtime import atomic_write

# Raised whenever the same preset and seed would write other data. 1 (markers without it):
# stationary noise, periodic over the epoch, EEG rescaled instead of whitened. 2: noise without
# wrap-around, MVNN-whitened EEG, per-trial latency jitter and amplitude gain of each component.
# 3: as 2, the noise synthesised over a length the FFT is fast for (other MEG trials, same EEG).
# 4: as 3 (the same trials), and each EEG subject's MVNN whitening saved beside its truth (fresh_trials.py).
GENERATOR_VERSION = 4
WORLD_KEYS = ("modality", "preset", "seed")


def marker_path(root: Path, subject: int) -> Path:
    return Path(root) / "ground_truth" / f"sub-{subject:02d}" / "complete.json"


def write(root: Path, subject: int, modality: str, preset: str, seed: int) -> None:
    """Mark ``subject`` as completely written by this version of the simulation."""
    with atomic_write(marker_path(root, subject), "w") as handle:
        json.dump(dict(zip(WORLD_KEYS, (modality, preset, seed)), generator=GENERATOR_VERSION), handle)


def to_write(root: Path, subjects: list[int], modality: str, preset: str, seed: int) -> list[int]:
    """The ``subjects`` to (re)write: without a marker, or marked by another version (with a warning).

    A subject marked with another world (modality, preset or seed) is an error, not
    overwritten: its folder holds other images, which the subjects asked for would share.
    """
    asked = dict(zip(WORLD_KEYS, (modality, preset, seed)))
    missing = []
    for number in subjects:
        path = marker_path(root, number)
        if not path.is_file():
            missing.append(number)
            continue
        found = json.loads(path.read_text())
        made_with = {key: found.get(key) for key in WORLD_KEYS}
        if made_with != asked:
            raise ValueError(f"{root} holds subject {number} made with {made_with}, not {asked}; "
                             "pass another root, or delete that folder to remake it")
        version = found.get("generator", 1)
        if version != GENERATOR_VERSION:
            warnings.warn(f"{root}: subject {number} was written by version {version} of the simulation, "
                          f"this is version {GENERATOR_VERSION}; writing it again", stacklevel=3)
            missing.append(number)
    return missing
