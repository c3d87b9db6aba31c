"""``i2b sample``: pictures in, brain signals out, in the units of the data the model was trained on.

Training standardised every channel; the statistics travel with the model
(``meta.json``) and :meth:`TrainedModel.sample` undoes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .trained_model import SamplingSettings, TrainedModel, load_model, sampling_settings


def generate(model="bundled", images=(), sampling: SamplingSettings | None = None, device=None,
             progress: bool = True, subject: int | None = None, **options) -> np.ndarray:
    """Brain signals for ``images`` (paths or PIL images): (n, C, T), or (n, samples_per_image, C, T) when > 1.

    ``model`` is "bundled", an exported model folder, a training run folder,
    or an already loaded :class:`TrainedModel`. ``sampling`` (or its fields as
    keywords, e.g. ``num_inference_steps=25``) says how to sample. ``subject``: whose responses, for a model of
    several subjects (default: its first; one it was not trained on gets the average subject's).
    """
    settings = sampling_settings(sampling, **options)
    images = list(images) if not isinstance(images, (str, Path)) else [images]
    if not images:
        raise ValueError("no images given; pass image files (or PIL images) to generate signals for")
    missing = [str(p) for p in images if isinstance(p, (str, Path)) and not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image file(s) not found: {', '.join(missing)}")
    trained = model if isinstance(model, TrainedModel) else load_model(model, device=device, progress=progress)
    cond = trained.image_condition(images, progress=progress)
    signals = trained.sample(cond, len(images), settings, progress, subject=subject)
    return signals[:, 0] if settings.samples_per_image == 1 else signals
