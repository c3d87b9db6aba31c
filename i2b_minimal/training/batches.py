"""The training data of a run, in model units, and the batch of every step.

* **Signals in model units.** DDPM assumes data of unit scale, so that x_T is
  close to N(0, I) (Ho et al. 2020 scale images to [-1, 1]). THINGS-EEG2 is
  whitened, roughly unit variance; THINGS-MEG is baseline z-scored per epoch. Both get the
  same treatment: each channel is standardised with the mean and standard
  deviation of the training targets (after averaging repetitions, when those are
  the targets). The statistics go into every checkpoint and the exported model,
  and ``export.to_data_units`` maps samples back to the data's units.
* **Reproducible batches.** Step n draws its global batch from a generator seeded
  with (seed, n), never from a running stream, so a resumed run draws exactly
  the batches the uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2b_minimal.datasets import brain_dataset, features, loaders, splits
from i2b_minimal.method import clip

from . import run_folder


@dataclass
class TrainingData:
    dataset: brain_dataset.BrainDataset  # the standardised signals, with the image features
    info: dict  # what sampling and resuming must know: shapes, channels, encoder, normalisation


def prepare_data(config, progress: bool = True, accelerator=None) -> TrainingData:
    """Load the training split of ``config``'s subjects, encode its images (cached beside the data), standardise.

    The subjects of THINGS-EEG2 and THINGS-MEG saw the same images, so one set of image features serves them
    all. Each channel is standardised with the statistics of every subject's targets together: one map back to
    the data's units, whichever subject a sample is of.
    """
    brains = [loaders.load(config.modality, config.data_root, subject=subject, split="train")
              for subject in config.subjects]
    if config.hold_out_validation:
        brains = [splits.split_training_data(brain)[0] for brain in brains]
    first = brains[0]
    different = [b.subject for b in brains if list(b.image_paths) != list(first.image_paths)
                 or b.ch_names != first.ch_names]
    if different:
        raise ValueError(f"subjects {different} of {config.data_root} differ from subject {first.subject} in their "
                         "training images or channels; one model of several subjects needs the same of both")
    image_features, encoder_info = None, None
    if config.conditioning != "none":
        encoder = clip.ImageEncoder(config.encoder, progress=progress)
        with accelerator.main_process_first() if accelerator else contextlib.nullcontext():
            # One process encodes and writes the cache; the others wait, then read it.
            tokens, pooled = features.encode_dataset(encoder, first.image_paths, Path(config.data_root) / "features",
                                                     progress=progress)
        image_features = tokens if config.conditioning == "cross_attention" else pooled
        encoder_info = {"name": encoder.name, "fingerprint": encoder.fingerprint, "token_dim": encoder.token_dim,
                        "embed_dim": encoder.embed_dim, "num_tokens": encoder.num_tokens}
    targets = [b.mean_over_repetitions() if config.trials == "mean" else b.signals for b in brains]
    # Channel by channel, so that the float64 temporaries stay small even for the full THINGS-MEG.
    n_channels = len(first.ch_names)
    count = sum(t[..., 0, :].size for t in targets)
    mean = np.array([sum(t[..., c, :].sum(dtype=np.float64) for t in targets) / count for c in range(n_channels)])
    std = np.sqrt([sum(((t[..., c, :].astype(np.float64) - mean[c]) ** 2).sum() for t in targets) / count
                   for c in range(n_channels)])
    if np.any(std == 0):
        raise ValueError(f"channels {[first.ch_names[i] for i in np.flatnonzero(std == 0)]} are constant in "
                         f"{config.data_root}; drop them before training")
    dataset = brain_dataset.SubjectsDataset(
        brain_dataset.BrainDataset(dataclasses.replace(
            b, signals=(b.signals - mean[:, None].astype(np.float32)) / std[:, None].astype(np.float32)),
            image_features, trials=config.trials, seed=config.seed) for b in brains)
    files = [path for subject in config.subjects
             for path in run_folder.training_files(config.modality, config.data_root, subject)]
    info = {"dataset": first.dataset, "subject": first.subject, "subjects": [b.subject for b in brains],
            "ch_type": first.ch_type, "ch_names": first.ch_names,
            "sfreq": first.sfreq, "times": first.times.tolist(), "n_channels": n_channels,
            "n_times": len(first.times), "n_train_images": first.n_images, "trials": config.trials,
            "hold_out_validation": config.hold_out_validation,
            "conditioning": config.conditioning, "encoder": encoder_info,
            "cond_dim": None if image_features is None else int(image_features.shape[-1]),
            "data_fingerprint": run_folder.data_fingerprint(files, first.image_paths, config.data_root),
            "normalisation": {"mean": mean.tolist(), "std": std.tolist(),
                              "rule": "per-channel z-score of the training targets; data = model * std + mean"}}
    return TrainingData(dataset, info)


def global_batch(dataset, seed: int, step: int, batch_size: int):
    """The (cond, x0, subject) batch of step ``step``: a pure function of (seed, step), without replacement when
    it fits. ``subject`` holds each example's row among the run's subjects (all 0 for one subject)."""
    rng = np.random.default_rng([seed, step, 0xBA7C4])
    rows = rng.choice(len(dataset), size=batch_size, replace=batch_size > len(dataset))
    items = [dataset[int(i)] for i in rows]
    cond = torch.stack([c for c, _, _ in items]) if dataset.features is not None else None
    return (cond, torch.stack([signal for _, signal, _ in items]),
            torch.tensor([subject for _, _, subject in items], dtype=torch.long))
