"""From a trained model to numbers and pictures: sample, evaluate, and the whole quickstart.

Three verbs, each one function, each one ``i2b`` command:

* :func:`generate` (``i2b sample``): pictures in, brain signals out, in the
  units of the data the model was trained on (training standardised every
  channel; the statistics travel with the model and are undone here).
* :func:`evaluate` (``i2b evaluate``): generate the test images of a dataset
  and score them as the paper does (MSE, Pearson), as encoding models are
  scored (correlation across images against the noise ceiling; Gifford et al.
  2022) and by identification (Kay et al. 2008), next to the linear baseline the
  reviewers of arXiv 2509.00787 asked for: ridge regression on the same CLIP
  features, fitted on the training split only.
* :func:`quickstart` (``i2b quickstart``): the offline world, tiny-CLIP
  features, a cross-attention model, DDIM samples, the evaluation and a report
  folder (``report.py``), from nothing, in minutes on a laptop CPU.

A diffusion model's single sample is one plausible response, noise included;
the encoding-model target is the *expected* response. Averaging several
samples per image estimates that expectation, which is why ``evaluate``
averages ``samples_per_image`` samples (and also reports a single sample).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2b_minimal.training import checkpoint, export
from i2b_minimal import runtime
BUNDLED_MODEL = Path(__file__).parents[1] / "assets" / "eeg-small-cross-attention"
SAMPLERS = ("ddim", "ddpm")


@dataclass
class TrainedModel:
    """An exported model with what it needs to run: the noise schedule, its metadata and its CLIP encoder."""

    path: Path
    network: torch.nn.Module
    schedule: object  # diffusion.NoiseSchedule
    meta: dict  # written by train.py: data, channels, normalisation, encoder, config
    encoder: object | None  # clip.ImageEncoder, None for conditioning="none"

    @property
    def conditioning(self) -> str:
        return self.meta["conditioning"]

    def condition(self, tokens: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor | None:
        """What the U-Net reads, exactly as in training: tokens for cross-attention, the pooled embedding otherwise."""
        return {"cross_attention": tokens, "concat": pooled, "add": pooled}.get(self.conditioning)

    def sample(self, cond: torch.Tensor | None, n_images: int, num_inference_steps: int = 50, sampler: str = "ddim",
               guidance_scale: float = 1.0, samples_per_image: int = 1, seed: int = 0, batch_size: int = 256,
               progress: bool = True) -> np.ndarray:
        """(n_images, samples_per_image, C, T) signals in the data's units.

        Every image's condition is repeated ``samples_per_image`` times and the
        lot is sampled in batches of ``batch_size``; batch k draws its noise from
        a generator seeded with (seed, k), so a call is reproducible.
        """
        from tqdm.auto import tqdm

        from i2b_minimal.method import diffusion
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, not {sampler!r}")
        if samples_per_image < 1 or n_images < 1:
            raise ValueError(f"need at least one image and one sample per image, got {n_images} and {samples_per_image}")
        device = next(self.network.parameters()).device
        total = n_images * samples_per_image
        repeated = None if cond is None else cond.repeat_interleave(samples_per_image, dim=0)
        shape = (self.meta["n_channels"], self.meta["n_times"])
        out = []
        starts = range(0, total, batch_size)
        for k, start in enumerate(tqdm(starts, desc=f"{sampler.upper()} batches", unit="batch",
                                       disable=not progress or len(starts) < 2)):
            rows = min(batch_size, total - start)
            generator = torch.Generator(device).manual_seed(int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
            batch_cond = None if repeated is None else repeated[start:start + rows]
            common = dict(cond=batch_cond, guidance_scale=guidance_scale, generator=generator,
                          progress=progress and len(starts) < 2)
            if sampler == "ddim":
                x = diffusion.ddim_sample(self.network, self.schedule, (rows, *shape),
                                          num_inference_steps=num_inference_steps, **common)
            else:
                x = diffusion.ddpm_sample(self.network, self.schedule, (rows, *shape), **common)
            out.append(x.float().cpu())
        signals = export.to_data_units(torch.cat(out).numpy(), self.meta)
        return signals.reshape(n_images, samples_per_image, *shape)


def resolve_model(source) -> Path:
    """``"bundled"``, an exported model folder, or a training run folder (whose ``model/`` is used)."""
    from i2b_minimal.training import train
    path = BUNDLED_MODEL if str(source) == "bundled" else Path(source).expanduser()
    if (path / train.MODEL_DIR / export.META_FILE).is_file():
        return path / train.MODEL_DIR
    if (path / checkpoint.STATE_FILE).is_file():
        raise ValueError(f"{path} is a training checkpoint, not an exported model; finish the run with "
                         f"`i2b train --resume --output-dir RUN` and use RUN (or RUN/{train.MODEL_DIR})")
    return path


def load_model(source="bundled", data=None, conditioning: str | None = None, device=None,
               progress: bool = True) -> TrainedModel:
    """Load a trained model and its CLIP encoder; refuse one made for other ``data`` or another ``conditioning``."""
    from i2b_minimal.method import clip
    path = resolve_model(source)
    network, schedule, meta = export.load_trained(path, data=data, conditioning=conditioning, device=device)
    encoder = None
    if meta["conditioning"] != "none":
        encoder = clip.ImageEncoder(meta["encoder"]["name"], device=device, progress=progress)
        export.check_compatible(meta, export.describe(encoder=encoder, conditioning=meta["conditioning"]),
                                    source=path)
    return TrainedModel(path, network, schedule, meta, encoder)


def generate(model="bundled", images=(), num_inference_steps: int = 50, sampler: str = "ddim",
             guidance_scale: float = 1.0, samples_per_image: int = 1, seed: int = 0, batch_size: int = 256,
             device=None, progress: bool = True) -> np.ndarray:
    """Brain signals for ``images`` (paths or PIL images): (n, C, T), or (n, samples_per_image, C, T) when > 1.

    ``model`` is "bundled", an exported model folder, a training run folder,
    or an already loaded :class:`TrainedModel`.
    """
    from i2b_minimal.method import clip
    images = list(images) if not isinstance(images, (str, Path)) else [images]
    if not images:
        raise ValueError("no images given; pass image files (or PIL images) to generate signals for")
    missing = [str(p) for p in images if isinstance(p, (str, Path)) and not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image file(s) not found: {', '.join(missing)}")
    trained = model if isinstance(model, TrainedModel) else load_model(model, device=device, progress=progress)
    cond = None
    if trained.encoder is not None:
        cond = trained.condition(*trained.encoder.encode([clip.load_rgb(image) for image in images], progress=progress))
    signals = trained.sample(cond, len(images), num_inference_steps, sampler, guidance_scale, samples_per_image,
                             seed, batch_size, progress)
    return signals[:, 0] if samples_per_image == 1 else signals


def detect_dataset(root) -> str | None:
    """"things-eeg2" or "things-meg" from a dataset root's layout (None when it is neither)."""
    root = Path(root)
    if (root / "preprocessed_data").is_dir():
        return "things-eeg2"
    if (root / "derivatives").is_dir():
        return "things-meg"
    return None


def evaluate(model="bundled", data_root=None, subject: int | None = None, samples_per_image: int = 4,
             num_inference_steps: int = 50, sampler: str = "ddim", guidance_scale: float = 1.0, seed: int = 0,
             conditioning: str | None = None, ridge: bool = True, ridge_encoder: str = "tiny", batch_size: int = 256,
             device=None, progress: bool = True, return_signals: bool = False):
    """Score a model on the test split of ``data_root`` (default: the data it was trained on).

    Returns the ``i2b evaluate --json`` dict (DESIGN.md): ``conditioning``,
    ``model`` (the average of ``samples_per_image`` samples per image),
    ``model_single_sample``, ``ridge``, ``noise_ceiling`` (split-half, from the
    data alone) and, when the root is a synthetic world, ``true_noise_ceiling``
    and ``ground_truth`` (the noiseless responses scored as a prediction: what
    a perfect model would get). Every score dict holds ``metrics.evaluate``'s
    keys. With ``return_signals`` also a dict of the arrays behind them.
    """
    from i2b_minimal.method import clip
    from i2b_minimal.datasets import loaders as data
    from i2b_minimal.datasets import features as feature_cache
    from i2b_minimal.evaluation import metrics
    began = time.perf_counter()
    path = model.path if isinstance(model, TrainedModel) else resolve_model(model)
    meta = model.meta if isinstance(model, TrainedModel) else _read_meta(path)
    root = Path(data_root) if data_root is not None else training_root(meta)
    subject = int(subject if subject is not None else meta["subject"])
    if not root.is_dir():
        fix = how_to_make(root, subject, meta["dataset"])
        raise FileNotFoundError(f"dataset root {root} does not exist; {fix}, or pass another --data-root")
    test = data.load(detect_dataset(root) or meta["dataset"], root, subject=subject, split="test")
    if isinstance(model, TrainedModel):
        export.check_compatible(meta, export.describe(test, model.encoder, conditioning or meta["conditioning"]),
                                    source=path)
        trained = model
    else:
        trained = load_model(path, data=test, conditioning=conditioning, device=device, progress=progress)
    timings = {}
    cond, encoder = None, trained.encoder
    if encoder is not None:
        cond = trained.condition(*feature_cache.encode_dataset(encoder, test.image_paths, root / "features", progress=progress))
    start = time.perf_counter()
    samples = trained.sample(cond, test.n_images, num_inference_steps, sampler, guidance_scale, samples_per_image,
                             seed, batch_size, progress)
    timings["sampling"] = round(time.perf_counter() - start, 2)
    generated = samples.mean(axis=1)

    def score(prediction):
        return metrics.evaluate(prediction, test.signals, test.times, test.sfreq, test.ch_type)

    result = {"conditioning": trained.conditioning, "model": score(generated),
              "model_single_sample": score(samples[:, 0]),
              "noise_ceiling": metrics.noise_ceiling_summary(test.signals, test.times, progress=progress)}
    signals = {"real": test.mean_over_repetitions(), "generated": generated, "samples": samples,
               "times": test.times, "ch_names": test.ch_names, "ch_type": test.ch_type, "sfreq": test.sfreq,
               "image_paths": test.image_paths}
    if ridge:
        start = time.perf_counter()
        encoder = encoder or clip.ImageEncoder(ridge_encoder, device=device, progress=progress)
        training = data.load(test.dataset, root, subject=subject, split="train")
        _, train_pooled = feature_cache.encode_dataset(encoder, training.image_paths, root / "features", progress=progress)
        _, test_pooled = feature_cache.encode_dataset(encoder, test.image_paths, root / "features", progress=progress)
        from i2b_minimal.evaluation.baselines import RidgeEncoder

        linear = RidgeEncoder().fit(train_pooled, training.mean_over_repetitions())
        signals["ridge"] = linear.predict(test_pooled)
        result["ridge"] = {**score(signals["ridge"]), "alpha": linear.alpha_}
        timings["ridge"] = round(time.perf_counter() - start, 2)
    if (root / "ground_truth").is_dir():
        from i2b_minimal.world import synthetic
        truth = synthetic.load_ground_truth(root, subject, test.image_paths)
        result["true_noise_ceiling"] = metrics.post_stimulus_mean(metrics.true_noise_ceiling(truth, test.signals),
                                                                  test.times)
        result["ground_truth"] = score(truth)
        signals["ground_truth"] = truth
    timings["total"] = round(time.perf_counter() - began, 2)
    result.update(samples_per_image=samples_per_image, sampler=sampler,
                  num_inference_steps=num_inference_steps if sampler == "ddim" else trained.schedule.num_train_timesteps,
                  guidance_scale=guidance_scale, seed=seed, checkpoint=str(path), dataset=test.dataset,
                  data_root=str(root), subject=subject, n_test_images=test.n_images,
                  n_test_repetitions=test.n_repetitions, seconds=timings)
    return (result, signals) if return_signals else result


def training_root(meta: dict) -> Path:
    """Where the data a model was trained on lives now: its recorded root, else that folder's name in the data folder.

    A model travels (the bundled one was trained on another machine), its data
    does not; ``runtime.data_dir()`` is where ``i2b data synth`` puts it here.
    """
    recorded = Path(meta["config"]["data_root"]).expanduser()
    return recorded if recorded.is_dir() else runtime.data_dir() / recorded.name


def how_to_make(root: Path, subject: int, dataset: str = "things-eeg2") -> str:
    """The command that makes the dataset ``root`` names: a synthetic world by its folder name, else a download."""
    parts = root.name.split("-")
    if len(parts) == 3 and parts[0] == "synthetic" and parts[1] in ("eeg", "meg"):
        return (f"make it with `i2b data synth --modality {parts[1]} --preset {parts[2]} --subjects {subject} "
                f"--out {root}`")
    return (f"make it with `i2b data synth --out {root}` or fetch real data with "
            f"`i2b data download {dataset} --subjects {subject} --out {root}`")


def _read_meta(path: Path) -> dict:
    import json

    meta_file = path / export.META_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(f"no trained model at {path}: {meta_file} is missing; `i2b train --output-dir RUN` "
                                "exports one to RUN/model, or use --checkpoint bundled")
    return json.loads(meta_file.read_text())


# ----------------------------------------------------------------------------- quickstart


def quickstart_config(data_root, output_dir):
    """The training run of ``i2b quickstart``: sized to finish within minutes on two CPU cores.

    This is the recipe ``benchmarks/quality.py`` gives every conditioning mode (its cross-attention row is
    what a quickstart scores); the bundled model is the same recipe trained for 1600 steps.
    """
    from i2b_minimal.training import train

    # prediction_type keeps TrainConfig's default, v-prediction (why: see TrainConfig).
    config = train.TrainConfig(data_root=str(data_root), modality="eeg", subject=1, encoder="tiny",
                               conditioning="cross_attention", base_channels=32, steps=400, batch_size=64,
                               lr=1e-3, warmup_steps=40, checkpoint_every=200, output_dir=str(output_dir), seed=0)
    if runtime.fast_mode():
        config = dataclasses.replace(config.fast_mode(), steps=40, checkpoint_every=40)
    return config


def quickstart(out="reports/quickstart", data_root=None, steps: int | None = None, samples_per_image: int | None = None,
               num_inference_steps: int | None = None, progress: bool = True) -> dict:
    """The whole pipeline on the offline default, from nothing; returns :func:`evaluate`'s dict plus the report.

    Synthesises the ``small`` EEG world for subject 1 (``tiny`` under
    ``I2B_FAST=1``) unless ``data_root`` already holds it, trains a
    cross-attention model on tiny-CLIP features into ``out/run``, samples the
    test images with DDIM, scores them against ridge and the noise ceiling and
    writes ``out/metrics.json``, ``out/README.md`` and the figures (``report.py``).
    """
    from . import report
    from i2b_minimal.world import synthetic
    from i2b_minimal.training import train
    began = time.perf_counter()
    fast = runtime.fast_mode()
    preset = "tiny" if fast else "small"
    out = Path(out)
    root = Path(data_root) if data_root is not None else runtime.data_dir() / f"synthetic-eeg-{preset}"
    if not (root / "preprocessed_data" / "sub-01" / "preprocessed_eeg_test.npy").is_file():
        synthetic.make_dataset(root, modality="eeg", preset=preset, seed=0, subjects=[1], progress=progress)
    config = quickstart_config(root, out / "run")
    if steps is not None:
        config = dataclasses.replace(config, steps=steps, checkpoint_every=min(config.checkpoint_every, steps))
    result = train.train(config, overwrite=True, progress=progress)
    metrics, signals = evaluate(result.model_dir, root, samples_per_image=samples_per_image or (2 if fast else 4),
                                num_inference_steps=num_inference_steps or (10 if fast else 50), progress=progress,
                                return_signals=True)
    metrics["training"] = {"steps": config.steps, "batch_size": config.batch_size,
                           "base_channels": config.base_channels, "seconds": round(result.seconds, 1),
                           "final_loss": float(np.mean(result.losses[-50:]))}
    metrics["figures"] = [path.name for path in report.write_figures(out, signals, losses=result.losses)]
    metrics["seconds"]["quickstart"] = round(time.perf_counter() - began, 1)
    metrics["report"] = str(out)
    report.write_summary(out, metrics)
    return metrics
