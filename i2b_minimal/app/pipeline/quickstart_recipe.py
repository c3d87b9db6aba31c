"""``i2b quickstart``: the whole pipeline on the offline default, from nothing, in minutes on a laptop CPU.

The offline world, tiny-CLIP features, a cross-attention model, DDIM samples,
the evaluation and a report folder (``app/report.py``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from i2b_minimal import runtime

from .scoring import evaluate
# The sampler of the quickstart's 400-step models, chosen on the validation split of this recipe (three seeds):
# 20 DDIM steps with eta 0.5 spread the single trials most like recorded ones. Models trained longer spread them
# less: the bundled EEG model (12800 steps) samples best with SamplingSettings' defaults (quality.md, "Twice as
# long again").
# Steps and eta are both named here, so that the quickstart keeps its sampler whatever the defaults become.
QUICKSTART_SAMPLING = {"num_inference_steps": 20, "eta": 0.5}


def quickstart_config(data_root, output_dir):
    """The training run of ``i2b quickstart``: sized to finish within minutes on two CPU cores.

    This is the recipe ``benchmarks/quality.py`` gives every conditioning mode (its cross-attention row is
    what a quickstart scores); the bundled EEG model is the same recipe on all 10 subjects, for 12800 steps with
    100 warm-up steps and twice this learning rate (2e-3, chosen on the validation split at 6400 steps).
    The fields it does not name keep ``TrainConfig``'s defaults, v-prediction among them: a run this short
    cannot afford an epsilon network's error amplified at the noisiest steps.
    """
    from i2b_minimal.training import train

    config = train.TrainConfig(data_root=str(data_root), modality="eeg", subjects=(1,), encoder="tiny",
                               conditioning="cross_attention", base_channels=32, steps=400, batch_size=64,
                               lr=1e-3, warmup_steps=40, checkpoint_every=200, output_dir=str(output_dir), seed=0)
    if runtime.fast_mode():
        config = dataclasses.replace(config.fast_mode(), steps=40, checkpoint_every=40)
    return config


def quickstart(out="reports/quickstart", data_root=None, steps: int | None = None, samples_per_image: int | None = None,
               num_inference_steps: int | None = None, progress: bool = True) -> dict:
    """The whole pipeline on the offline default, from nothing; returns :func:`evaluate`'s dict plus the report.

    Synthesises the ``small`` EEG world for subject 1 (``tiny`` under
    ``I2B_FAST=1``) at ``data_root`` unless it is there already, trains a
    cross-attention model on tiny-CLIP features into ``out/run``, samples the
    test images with DDIM, scores them against ridge and the noise ceiling and
    writes ``out/metrics.json``, ``out/README.md`` and the figures (``app/report.py``).
    """
    from i2b_minimal.app import report
    from i2b_minimal.training import train
    from i2b_minimal.world import synthetic

    began = time.perf_counter()
    fast = runtime.fast_mode()
    out = Path(out)
    root = synthetic.ensure_dataset(data_root, "eeg", "tiny" if fast else "small", subjects=[1], progress=progress)
    config = quickstart_config(root, out / "run")
    if steps is not None:
        config = dataclasses.replace(config, steps=steps, checkpoint_every=min(config.checkpoint_every, steps))
    result = train.train(config, overwrite=True, progress=progress)
    ddim_steps = num_inference_steps or (10 if fast else QUICKSTART_SAMPLING["num_inference_steps"])
    metrics, signals = evaluate(result.model_dir, root, samples_per_image=samples_per_image or (2 if fast else 4),
                                num_inference_steps=ddim_steps, eta=QUICKSTART_SAMPLING["eta"], progress=progress,
                                return_signals=True)
    metrics["training"] = {"steps": config.steps, "batch_size": config.batch_size,
                           "base_channels": config.base_channels, "seconds": round(result.seconds, 1),
                           "final_loss": float(np.mean(result.losses[-50:]))}
    metrics["figures"] = [path.name for path in report.write_figures(out, signals, losses=result.losses)]
    metrics["seconds"]["quickstart"] = round(time.perf_counter() - began, 1)
    metrics["report"] = str(out)
    report.write_summary(out, metrics)
    return metrics
