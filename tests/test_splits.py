"""The validation split of the training images: whole concepts, deterministic, never the test split."""

from pathlib import Path

import numpy as np
import pytest

from i2b_minimal.datasets.loaders import BrainData
from i2b_minimal.datasets.splits import split_training_data, validation_split


def _concepts(n_concepts=50, per_concept=10):
    """THINGS-like: the images grouped by concept, in concept order."""
    return [f"concept{c:03d}" for c in range(n_concepts) for _ in range(per_concept)]


def test_validation_holds_out_a_tenth_of_the_concepts_whole():
    concepts = _concepts()
    fit, validation = validation_split(concepts)
    assert sorted(np.concatenate([fit, validation])) == list(range(len(concepts)))
    held_out = {concepts[i] for i in validation}
    assert len(held_out) == 5  # 10% of 50 concepts
    assert not held_out & {concepts[i] for i in fit}
    assert len(validation) == 5 * 10  # with all their images


def test_the_split_depends_on_the_seed_and_the_concepts_only():
    concepts = _concepts()
    fit, validation = validation_split(concepts, seed=3)
    again_fit, again_validation = validation_split(concepts, seed=3)
    np.testing.assert_array_equal(validation, again_validation)
    np.testing.assert_array_equal(fit, again_fit)
    assert {concepts[i] for i in validation} != {concepts[i] for i in validation_split(concepts, seed=4)[1]}
    shuffled = list(np.random.default_rng(0).permutation(concepts))
    assert {shuffled[i] for i in validation_split(shuffled, seed=3)[1]} == {concepts[i] for i in validation}


def test_at_least_one_concept_and_never_all():
    assert len(validation_split(["a", "a", "b"], fraction=0.01)[1]) > 0
    fit, validation = validation_split(["a", "b"], fraction=0.99)
    assert len(fit) == 1 and len(validation) == 1
    with pytest.raises(ValueError, match="at least 2 concepts"):
        validation_split(["a", "a"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        validation_split(_concepts(), fraction=1.0)


def _brain_data(split):
    concepts = _concepts(n_concepts=20, per_concept=3)
    signals = np.arange(len(concepts), dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 1, 4), np.float32)
    return BrainData(signals, [Path(f"/images/{i}.jpg") for i in range(len(concepts))], concepts, ["Oz"],
                     np.linspace(0, 0.3, 4), 10.0, "eeg", 1, split, "things-eeg2")


def test_split_training_data_keeps_the_rows_together():
    fit, validation = split_training_data(_brain_data("train"))
    assert fit.n_images + validation.n_images == 60 and validation.n_images == 2 * 3
    for part in (fit, validation):
        rows = part.signals[:, 0, 0, 0].astype(int)  # each row's signal holds its original index
        assert [Path(f"/images/{i}.jpg") for i in rows] == part.image_paths
    with pytest.raises(ValueError, match="from the training split"):
        split_training_data(_brain_data("test"))
