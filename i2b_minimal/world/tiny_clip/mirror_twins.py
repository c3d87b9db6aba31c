"""Batches with mirror twins: each picture beside the same picture with its shape on the other side.

CLIP's loss (Radford et al. 2021) rewards only what tells the captions of one
batch apart, and in a batch of random combinations two captions almost never
differ in left and right alone. A tiny CLIP trained on such batches learned
no left and right at all: its text embeddings of "... on the left" and "...
on the right" had a cosine of 0.999, and the pooled image embedding carried
no linear trace of the side (R^2 0.01), although the simulated brain answers
a stimulus on the left with the right hemisphere. Contrastive vision-language
models at large share the weakness (Kamath et al. 2023, "What's 'up' with
vision-language models?"; Yuksekgonul et al. 2023, whose NegCLIP puts such
hard negatives into the batch). Here every picture with a side is followed in
its batch by its mirror twin, the combination with left and right swapped
(drawn by the world, not flipped: the shapes keep their orientation), so the
loss can only be low if both towers read the side.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from i2b_minimal.world import synthetic

from .world_split import is_held_out

MIRRORED = {"left": "right", "right": "left", "upper left": "upper right", "upper right": "upper left",
            "lower left": "lower right", "lower right": "lower left"}


def mirror(attributes: dict) -> dict | None:
    """The same combination with left and right swapped; None for a shape in the middle column."""
    other = MIRRORED.get(attributes["position"])
    return None if other is None else {**attributes, "position": other}


def with_mirror_twins(world: list[dict]) -> tuple[list[dict], np.ndarray]:
    """``world`` followed by the mirror twins it lacks, and ``twin[i]``: the row of ``world[i]``'s twin, -1 if none.

    A twin that is a held-out combination is left out: training never sees those (``world_split``).
    """
    rows = {synthetic.caption(attributes): i for i, attributes in enumerate(world)}
    table, twin = list(world), np.full(len(world), -1)
    for i, attributes in enumerate(world):
        other = mirror(attributes)
        if other is None or is_held_out(other):
            continue
        twin[i] = rows.setdefault(synthetic.caption(other), len(table))
        if twin[i] == len(table):
            table.append(other)
    return table, twin


def twin_batches(rng: np.random.Generator, twin: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Endless batches of rows: the pool (``len(twin)`` rows) in a new order every epoch, each row followed by its
    twin when it has one that is not in the batch yet; so about half of a batch are twins of the other half."""
    batch: list[int] = []  # a batch may run on from one epoch into the next
    while True:
        for row in rng.permutation(len(twin)):
            batch += [r for r in (row, twin[row]) if r >= 0 and r not in batch][:batch_size - len(batch)]
            if len(batch) == batch_size:
                yield np.array(batch)
                batch = []
