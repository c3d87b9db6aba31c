"""The world, split by attribute combination: the combinations training never sees.

Retrieval and the probes are measured on fresh drawings of these unseen
combinations, so their figures are about generalisation, not memory.
"""

from __future__ import annotations

import zlib

import numpy as np

from i2b_minimal.world import synthetic

HELD_OUT_EVERY = 10


def is_held_out(attributes: dict) -> bool:
    """True for the combinations kept out of training (crc32 is stable across runs, unlike hash())."""
    return zlib.crc32(synthetic.caption(attributes).encode()) % HELD_OUT_EVERY == 0


def sample_world(rng: np.random.Generator, n: int, held_out: bool) -> list[dict]:
    """``n`` distinct attribute combinations from the training (or held-out) side of the split."""
    chosen: dict[str, dict] = {}
    while len(chosen) < n:
        for attributes in synthetic.sample_attributes(rng, 4 * n):
            if is_held_out(attributes) == held_out and len(chosen) < n:
                chosen.setdefault(synthetic.caption(attributes), attributes)
    return list(chosen.values())
