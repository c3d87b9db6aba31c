"""The torch ``Dataset`` that training draws from: (image condition, brain signal) pairs, one per image."""

from __future__ import annotations

import numpy as np

from .loaders import BrainData


class BrainDataset:
    """A torch ``Dataset`` of (condition, signal) pairs, one item per image.

    ``features`` (optional) is indexed by image row: an array or tensor, or a
    tuple of them such as CLIP's ``(tokens, pooled)``; without it the condition
    is the image path as a string. ``trials="mean"`` yields the average over
    repetitions (the encoding target of Gifford et al. 2022); ``trials="single"``
    yields one repetition drawn at random on every ``__getitem__``, a form of
    data augmentation. The draw is a pure function of (seed, epoch, index, how
    often this index was drawn), so runs are reproducible and independent of
    shuffling; call :meth:`set_epoch` every epoch when a ``DataLoader`` uses
    worker processes, which each start from a copy of the draw counters.
    """

    def __init__(self, brain_data: BrainData, features=None, trials: str = "mean", seed: int = 0):
        if trials not in ("mean", "single"):
            raise ValueError(f"trials must be 'mean' or 'single', not {trials!r}")
        if features is not None:
            lengths = {len(f) for f in (features if isinstance(features, (tuple, list)) else (features,))}
            if lengths != {brain_data.n_images}:
                raise ValueError(f"features have {sorted(lengths)} rows but brain_data has {brain_data.n_images} images")
        self.brain_data, self.features, self.trials, self.seed = brain_data, features, trials, seed
        self.mean = brain_data.mean_over_repetitions() if trials == "mean" else None
        self.epoch = 0
        self._draws = np.zeros(brain_data.n_images, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.brain_data.n_images

    def __getitem__(self, index: int):
        import torch

        if self.trials == "mean":
            signal = self.mean[index]
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index, self._draws[index]])
            self._draws[index] += 1
            signal = self.brain_data.signals[index, rng.integers(self.brain_data.n_repetitions)]
        if self.features is None:
            condition = str(self.brain_data.image_paths[index])
        elif isinstance(self.features, (tuple, list)):
            condition = tuple(torch.as_tensor(f[index]) for f in self.features)
        else:
            condition = torch.as_tensor(self.features[index])
        return condition, torch.as_tensor(np.ascontiguousarray(signal), dtype=torch.float32)
