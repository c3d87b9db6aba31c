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
    """Load ``config``'s training split, encode its images (cached beside the data), standardise each channel."""
    brain = loaders.load(config.modality, config.data_root, subject=config.subject, split="train")
    if config.hold_out_validation:
        brain, _ = splits.split_training_data(brain)
    image_features, encoder_info = None, None
    if config.conditioning != "none":
        encoder = clip.ImageEncoder(config.encoder, progress=progress)
        with accelerator.main_process_first() if accelerator else contextlib.nullcontext():
            # One process encodes and writes the cache; the others wait, then read it.
            tokens, pooled = features.encode_dataset(encoder, brain.image_paths, Path(config.data_root) / "features",
                                                     progress=progress)
        image_features = tokens if config.conditioning == "cross_attention" else pooled
        encoder_info = {"name": encoder.name, "fingerprint": encoder.fingerprint, "token_dim": encoder.token_dim,
                        "embed_dim": encoder.embed_dim, "num_tokens": encoder.num_tokens}
    targets = brain.mean_over_repetitions() if config.trials == "mean" else brain.signals
    # Channel by channel, so that the float64 temporaries stay small even for the full THINGS-MEG.
    mean = np.array([targets[..., c, :].mean(dtype=np.float64) for c in range(targets.shape[-2])])
    std = np.array([targets[..., c, :].astype(np.float64).std() for c in range(targets.shape[-2])])
    if np.any(std == 0):
        raise ValueError(f"channels {[brain.ch_names[i] for i in np.flatnonzero(std == 0)]} are constant in "
                         f"{config.data_root}; drop them before training")
    scaled = (brain.signals - mean[:, None].astype(np.float32)) / std[:, None].astype(np.float32)
    dataset = brain_dataset.BrainDataset(dataclasses.replace(brain, signals=scaled), image_features,
                                         trials=config.trials, seed=config.seed)
    info = {"dataset": brain.dataset, "subject": brain.subject, "ch_type": brain.ch_type, "ch_names": brain.ch_names,
            "sfreq": brain.sfreq, "times": brain.times.tolist(), "n_channels": len(brain.ch_names),
            "n_times": len(brain.times), "n_train_images": brain.n_images, "trials": config.trials,
            "hold_out_validation": config.hold_out_validation,
            "conditioning": config.conditioning, "encoder": encoder_info,
            "cond_dim": None if image_features is None else int(image_features.shape[-1]),
            "data_fingerprint": run_folder.data_fingerprint(
                run_folder.training_files(config.modality, config.data_root, config.subject), brain.image_paths,
                config.data_root),
            "normalisation": {"mean": mean.tolist(), "std": std.tolist(),
                              "rule": "per-channel z-score of the training targets; data = model * std + mean"}}
    return TrainingData(dataset, info)


def global_batch(dataset, seed: int, step: int, batch_size: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The (cond, x0) batch of step ``step``: a pure function of (seed, step), without replacement when it fits."""
    rng = np.random.default_rng([seed, step, 0xBA7C4])
    rows = rng.choice(len(dataset), size=batch_size, replace=batch_size > len(dataset))
    items = [dataset[int(i)] for i in rows]
    cond = torch.stack([c for c, _ in items]) if dataset.features is not None else None
    return cond, torch.stack([signal for _, signal in items])
