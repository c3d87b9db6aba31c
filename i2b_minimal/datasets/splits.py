"""The validation split: the training images that model selection may score on.

Every choice made by looking at scores (sampling steps, guidance scale, the
number of draws M or samples K, any hyperparameter) is a fit to the data it
was scored on, so a test score of a model chosen on the test set is optimistic.
Model selection therefore scores on a validation split of the *training*
images, made here, and only there; the test split stays for the final numbers.

The split holds out whole concepts, a random ``fraction`` of them (10% by
default), chosen by ``seed`` from the sorted concept names, so it depends
neither on the order of the images nor on anything but the concepts. Whole
concepts, because the THINGS test images show concepts that never occur in
training (the loaders drop training images of test concepts): a validation
image should be new in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only a type here
    from .loaders import BrainData

VALIDATION_FRACTION = 0.1
SCORED_SPLITS = ("test", "validation")  # what an evaluation scores: the test split, or the validation images


def validation_split(concepts: Sequence[str], fraction: float = VALIDATION_FRACTION,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training images to fit on and to validate on: ``(fit, validation)``, each sorted.

    ``concepts``: one concept name per training image (``BrainData.concepts``).
    ``round(fraction * n_concepts)`` concepts, at least one and never all, go
    to validation with every image they have.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    names = sorted(set(concepts))
    if len(names) < 2:
        raise ValueError(f"a validation split by concept needs at least 2 concepts, got {len(names)}")
    n_held_out = min(max(1, round(fraction * len(names))), len(names) - 1)
    chosen = np.random.default_rng(seed).choice(len(names), size=n_held_out, replace=False)
    held_out = np.isin(np.asarray(concepts), np.asarray(names)[chosen])
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def split_training_data(train: BrainData, fraction: float = VALIDATION_FRACTION,
                        seed: int = 0) -> tuple[BrainData, BrainData]:
    """A training split as (the part to fit on, the validation part), by :func:`validation_split`."""
    if train.split != "train":
        raise ValueError(f"the validation split is made from the training split, not from {train.split!r}")
    fit, validation = validation_split(train.concepts, fraction, seed)
    return train.subset(fit), train.subset(validation)
