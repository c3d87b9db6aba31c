"""A candidate, not adopted yet: the tiny CLIP trained with texture twins beside its mirror twins.

`feature_ceiling.md` says texture energy is what the tiny CLIP's pooled embedding misses most. Mirror twins
(`world/tiny_clip/mirror_twins.py`) put the side into it by giving every picture, in its batch, the caption that
differs in the side alone; this gives every picture also one that differs in the texture alone (a random other
texture of the same combination, drawn by the world), the same NegCLIP-style hard negative for texture.

    python benchmarks/tiny_clip_texture_twins.py OUT [SEED]   # then feature_ceiling.py with clip.ImageEncoder(OUT)

It runs `i2b clip train`'s loop (`fitting.train`) with the pool and the batches replaced.
"""

import json
import sys

import numpy as np

from i2b_minimal.world import synthetic
from i2b_minimal.world.tiny_clip import fitting, mirror_twins
from i2b_minimal.world.tiny_clip.world_split import is_held_out


def with_twins(world):
    """The pool, the mirror and texture twins it lacks, and each row's twins (rows of the table)."""
    rng = np.random.default_rng(123)  # the twins' textures: the same draw for every training seed
    rows = {synthetic.caption(a): i for i, a in enumerate(world)}
    table, twins = list(world), [[] for _ in world]

    def row_of(attributes):  # as with_mirror_twins: a twin the table lacks joins it
        row = rows.setdefault(synthetic.caption(attributes), len(table))
        if row == len(table):
            table.append(attributes)
            twins.append([])
        return row

    for i, attributes in enumerate(world):
        mirrored = mirror_twins.mirror(attributes)
        if mirrored is not None and not is_held_out(mirrored):
            twins[i].append(row_of(mirrored))
        others = [t for t in synthetic.ATTRIBUTES["texture"] if t != attributes["texture"]]
        for texture in rng.permutation(others):
            if not is_held_out(textured := {**attributes, "texture": str(texture)}):
                twins[i].append(row_of(textured))
                break
    return table, twins


def batches(rng, twins, batch_size):
    """Endless batches: the rows in a new order every epoch, each followed by its twins not in the batch yet."""
    batch = []
    while True:
        for row in rng.permutation(len(twins)):
            batch += [r for r in [row, *twins[row]] if r not in batch][:batch_size - len(batch)]
            if len(batch) == batch_size:
                yield np.array(batch)
                batch = []


if __name__ == "__main__":
    fitting.with_mirror_twins, fitting.twin_batches = with_twins, batches
    # A smaller pool than the bundled 12,288: with both kinds of twin it still draws about 20,000 pictures.
    config = fitting.TinyCLIPConfig(pool_size=8192, seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(json.dumps(fitting.train(sys.argv[1], config), indent=1))
