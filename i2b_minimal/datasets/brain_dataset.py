"""The torch ``Dataset`` that training draws from: (image condition, brain signal) pairs, one per image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only a type here; loaders.py imports this module to offer data.BrainDataset
    from .loaders import BrainData

TRIALS = ("mean", "single")  # what one item's signal is: the average of the repetitions, or one of them


class BrainDataset:
    """A torch ``Dataset`` of (condition, signal) pairs, one item per image.

    ``features`` (optional) is indexed by image row: an array or tensor, or a
    tuple of them such as CLIP's ``(tokens, pooled)``; without it the condition
    is the image path as a string. ``trials="mean"`` yields the average over
    repetitions (the encoding target of Gifford et al. 2022); ``trials="single"``
    yields one repetition drawn at random on every ``__getitem__``, a form of
    data augmentation. The draw is a pure function of (seed, index, how often
    this index was drawn), so runs are reproducible and independent of
    shuffling, and :meth:`state_dict` / :meth:`load_state_dict` carry the
    counts across a checkpoint. The counts live in this object: index it in one
    process, as the trainer does (a ``DataLoader``'s worker processes would each
    count in a copy of their own, and draw the same trials every epoch).
    """

    def __init__(self, brain_data: BrainData, features=None, trials: str = "mean", seed: int = 0):
        if trials not in TRIALS:
            raise ValueError(f"trials must be one of {TRIALS}, not {trials!r}")
        if features is not None:
            lengths = {len(f) for f in (features if isinstance(features, (tuple, list)) else (features,))}
            if lengths != {brain_data.n_images}:
                raise ValueError(f"features have {sorted(lengths)} rows but brain_data has {brain_data.n_images} images")
        self.brain_data, self.features, self.trials, self.seed = brain_data, features, trials, seed
        self.mean = brain_data.mean_over_repetitions() if trials == "mean" else None
        self._draws = np.zeros(brain_data.n_images, dtype=np.int64)

    def state_dict(self) -> dict[str, np.ndarray]:
        """How often each image was drawn: what the next single-trial draws depend on (a copy)."""
        return {"draws": self._draws.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`'s counts, e.g. those of a checkpoint."""
        draws = np.asarray(state["draws"], dtype=np.int64)
        if draws.shape != self._draws.shape:
            raise ValueError(f"the state counts draws of {draws.shape[0]} images, but this dataset has "
                             f"{self._draws.shape[0]}")
        self._draws[:] = draws

    def __len__(self) -> int:
        return self.brain_data.n_images

    def __getitem__(self, index: int):
        import torch

        if self.trials == "mean":
            signal = self.mean[index]
        else:
            rng = np.random.default_rng([self.seed, index, self._draws[index]])
            self._draws[index] += 1
            signal = self.brain_data.signals[index, rng.integers(self.brain_data.n_repetitions)]
        if self.features is None:
            condition = str(self.brain_data.image_paths[index])
        elif isinstance(self.features, (tuple, list)):
            condition = tuple(torch.as_tensor(f[index]) for f in self.features)
        else:
            condition = torch.as_tensor(self.features[index])
        return condition, torch.as_tensor(np.ascontiguousarray(signal), dtype=torch.float32)


class SubjectsDataset:
    """Several subjects' :class:`BrainDataset` s as one: item i is ``(condition, signal, row)``.

    Subject k's images come after those of subjects 0..k-1; ``row`` is k, the subject's row in a
    multi-subject model's table (``method/subjects.py``). The draw counts of all subjects make one
    state, so a checkpoint resumes every subject's single-trial draws. With one subject, item i is
    that subject's item i, drawn exactly as it alone would be.
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("no subjects' datasets given")
        self.features = self.datasets[0].features
        self._starts = np.cumsum([0] + [len(d) for d in self.datasets])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int):
        row = int(np.searchsorted(self._starts, index, side="right")) - 1
        condition, signal = self.datasets[row][index - int(self._starts[row])]
        return condition, signal, row

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every subject's draw counts, one after another."""
        return {"draws": np.concatenate([d.state_dict()["draws"] for d in self.datasets])}

    def load_state_dict(self, state: dict) -> None:
        draws = np.asarray(state["draws"], dtype=np.int64)
        if draws.shape != (len(self),):
            raise ValueError(f"the state counts draws of {draws.shape[0]} images, but these subjects have {len(self)}")
        for dataset, start, stop in zip(self.datasets, self._starts, self._starts[1:]):
            dataset.load_state_dict({"draws": draws[start:stop]})
