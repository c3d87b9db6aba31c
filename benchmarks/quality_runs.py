"""The training runs behind ``benchmarks/quality.py``'s recipe and ablation parts: one recipe, run in parallel.

Each run trains with the quickstart's recipe (``pipeline.quickstart_config``) at the benchmark's ``--steps``,
``--width`` and ``--batch-size``, then is evaluated (``pipeline.evaluate``); ``--jobs`` runs go at once, each
in a worker process of its own.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import time
from pathlib import Path

import numpy as np

from i2b_minimal import pipeline, train


def recipe(mode: str, root: Path, args) -> train.TrainConfig:
    """The one training recipe every conditioning mode gets: the quickstart's, at ``--steps``, ``--width``, ``--batch-size``."""
    quickstart = pipeline.quickstart_config(root, Path(args.runs) / mode)
    return dataclasses.replace(quickstart, modality=args.modality, conditioning=mode, base_channels=args.width,
                               steps=args.steps, batch_size=args.batch_size, warmup_steps=min(100, args.steps // 10),
                               checkpoint_every=args.steps)


def train_and_score(config: train.TrainConfig, root: Path, split: str, samples_per_image: int, baselines: bool,
                    sampling: dict = pipeline.QUICKSTART_SAMPLING):
    """One training run, then its evaluation on ``split``: (result, the arrays the tables need, seconds trained).

    ``sampling``: the sampler's settings, by default the quickstart recipe's (``--parts seeds`` scores the
    bundled recipe with its own, ``SamplingSettings``' defaults).

    A function of its own so that ``--jobs`` can run several in worker processes, one torch thread each (the
    package's policy on two cores), each its own program as far as the scheduler is concerned.
    """
    start = time.perf_counter()
    run = train.train(config, overwrite=True, progress=False)
    trained_s = time.perf_counter() - start
    result, signals = pipeline.evaluate(pipeline.load_model(run.model_dir), root, split=split, ridge=baselines,
                                        samples_per_image=samples_per_image, **sampling, progress=False,
                                        return_signals=True)
    arrays = {"conditional_mean": signals["readouts"]["conditional_mean"], "real": signals["real"],
              "ridge": signals.get("ridge"), "times": signals["times"]}
    return result, arrays, trained_s


def spread(values) -> str:
    """Mean ± sd over seeds (sample sd), three decimals; the value alone for one seed."""
    return f"{np.mean(values):.3f}" + (f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else "")


def run_all(jobs: list[tuple], workers: int, function=train_and_score) -> list:
    """``function`` (default :func:`train_and_score`) for each argument tuple of ``jobs``, ``workers`` at a time,
    in the jobs' order."""
    if workers == 1:
        return [function(*job) for job in jobs]
    context = multiprocessing.get_context("spawn")  # fork after torch has started its threads can deadlock
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(function, *zip(*jobs)))
