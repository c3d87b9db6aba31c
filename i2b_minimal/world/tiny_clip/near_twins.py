"""Batches of near-twins: attribute combinations one attribute apart, so that every attribute must be seen.

In a batch of random combinations two captions almost always differ in
several attributes, and the contrastive loss is satisfied by whichever are
easiest to see. Trained that way, the first tiny CLIP told colour, background
and position apart and barely encoded shape (a linear probe on the pooled
embedding: 0.18 against a chance of 0.10) or texture energy (linear R^2 0.35),
two of the properties the simulated brain responds to. Hard negatives fix this
in vision-language training: captions that differ in one part only, which the
image must then resolve (NegCLIP, Yuksekgonul et al. 2023, "When and why
vision-language models behave like bags-of-words", ICLR). Here a batch is
made of groups: an anchor combination and ``group_size - 1`` twins, each the
anchor with one attribute (chosen uniformly) changed to another value. Within
a group, telling the captions apart needs exactly the attribute that differs.
"""

from __future__ import annotations

import numpy as np

from i2b_minimal.world import synthetic

from .world_split import is_held_out, sample_world


def twin(attributes: dict, rng: np.random.Generator) -> dict:
    """``attributes`` with one attribute, chosen uniformly, changed to another of its values, chosen uniformly."""
    name = list(synthetic.ATTRIBUTES)[rng.integers(len(synthetic.ATTRIBUTES))]
    others = [value for value in synthetic.ATTRIBUTES[name] if value != attributes[name]]
    return {**attributes, name: str(others[rng.integers(len(others))])}


def sample_groups(rng: np.random.Generator, n_groups: int, group_size: int) -> list[list[dict]]:
    """``n_groups`` groups of ``group_size`` distinct training combinations: an anchor and its twins.

    No combination occurs twice in all the groups (two identical captions in one batch would each be
    told to match the other's picture and not their own), and none is held out (``world_split``).
    """
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    seen, groups = set(), []
    while len(groups) < n_groups:
        (anchor,) = sample_world(rng, 1, held_out=False)
        if synthetic.caption(anchor) in seen:
            continue
        group, tries = [anchor], 0
        while len(group) < group_size and tries < 50 * group_size:  # a few anchors have few free twins
            tries += 1
            candidate = twin(anchor, rng)
            caption = synthetic.caption(candidate)
            if not is_held_out(candidate) and caption not in seen and all(synthetic.caption(g) != caption for g in group):
                group.append(candidate)
        if len(group) == group_size:
            seen.update(synthetic.caption(g) for g in group)
            groups.append(group)
    return groups
