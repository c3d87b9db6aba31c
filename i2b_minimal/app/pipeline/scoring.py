"""``i2b evaluate``: generate the test images of a dataset and score them, next to a linear baseline.

Scored as the paper scores (MSE, Pearson), as encoding models are scored
(correlation across images against the noise ceiling; Gifford et al. 2022) and
by identification (Kay et al. 2008), next to the baseline the reviewers of
arXiv 2509.00787 asked for: ridge regression on the same CLIP features,
fitted on the training split only. A diffusion model's single sample is one
plausible response, noise included; the encoding-model target is the
*expected* response, so the model's row averages ``samples_per_image``
samples per image (and ``model_single_sample`` reports one).
"""

from __future__ import annotations

import time
from pathlib import Path

from i2b_minimal.datasets import features as feature_cache
from i2b_minimal.datasets import loaders
from i2b_minimal.datasets.things_format import detect_dataset
from i2b_minimal.evaluation import metrics
from i2b_minimal.method import clip
from i2b_minimal.training import export

from .data_roots import how_to_make, training_root
from .trained_model import SamplingSettings, TrainedModel, load_model, resolve_model, sampling_settings

EVALUATION_SAMPLING = SamplingSettings(samples_per_image=4)  # what `i2b evaluate` and the model cards use


def evaluate(model="bundled", data_root=None, subject: int | None = None, sampling: SamplingSettings | None = None,
             *, conditioning: str | None = None, ridge: bool = True, ridge_encoder: str = "tiny", device=None,
             progress: bool = True, return_signals: bool = False, **options):
    """Score a model on the test split of ``data_root`` (default: the data it was trained on).

    ``sampling`` (default :data:`EVALUATION_SAMPLING`), or its fields as keywords
    (``samples_per_image=4, num_inference_steps=50``...), says how to sample.
    ``ridge_encoder`` encodes the images for the ridge baseline when the model
    has no encoder of its own (``conditioning="none"``).

    Returns the ``i2b evaluate --json`` dict: ``conditioning``, ``model`` (the
    average of ``samples_per_image`` samples per image), ``model_single_sample``,
    ``ridge``, ``noise_ceiling`` (split-half, from the data alone) and, when the
    root is a synthetic world, ``true_noise_ceiling`` and ``ground_truth`` (the
    noiseless responses scored as a prediction: what a perfect model would
    get); then the settings and the data it was run with, and ``seconds``. Every
    score dict holds ``metrics.evaluate``'s keys. With ``return_signals`` also a
    dict of the arrays behind them.
    """
    began = time.perf_counter()
    settings = sampling_settings(sampling or EVALUATION_SAMPLING, **options)
    trained, test, root = _model_and_test_data(model, data_root, subject, conditioning, device, progress)
    cond = None
    if trained.encoder is not None:
        cond = trained.condition(*feature_cache.encode_dataset(trained.encoder, test.image_paths, root / "features",
                                                               progress=progress))
    start = time.perf_counter()
    samples = trained.sample(cond, test.n_images, settings, progress)
    timings = {"sampling": round(time.perf_counter() - start, 2)}
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
        encoder = trained.encoder or clip.ImageEncoder(ridge_encoder, device=device, progress=progress)
        signals["ridge"], alpha = _ridge_prediction(encoder, test, root, progress)
        result["ridge"] = {**score(signals["ridge"]), "alpha": alpha}
        timings["ridge"] = round(time.perf_counter() - start, 2)
    if (root / "ground_truth").is_dir():
        from i2b_minimal.world import synthetic

        signals["ground_truth"] = synthetic.load_ground_truth(root, test.subject, test.image_paths)
        result["true_noise_ceiling"] = metrics.post_stimulus_mean(
            metrics.true_noise_ceiling(signals["ground_truth"], test.signals), test.times)
        result["ground_truth"] = score(signals["ground_truth"])
    timings["total"] = round(time.perf_counter() - began, 2)
    steps = settings.num_inference_steps if settings.sampler == "ddim" else trained.schedule.num_train_timesteps
    result.update(samples_per_image=settings.samples_per_image, sampler=settings.sampler, num_inference_steps=steps,
                  guidance_scale=settings.guidance_scale, seed=settings.seed, checkpoint=str(trained.path),
                  dataset=test.dataset, data_root=str(root), subject=test.subject, n_test_images=test.n_images,
                  n_test_repetitions=test.n_repetitions, seconds=timings)
    return (result, signals) if return_signals else result


def _model_and_test_data(model, data_root, subject, conditioning, device, progress):
    """The model (loaded when given by name), the test split it is scored on, and that split's root.

    Refuses a model made for other data or another conditioning before any sampling.
    """
    path = model.path if isinstance(model, TrainedModel) else resolve_model(model)
    meta = model.meta if isinstance(model, TrainedModel) else export.read_meta(path)
    root = Path(data_root) if data_root is not None else training_root(meta)
    subject = int(subject if subject is not None else meta["subject"])
    if not root.is_dir():
        fix = how_to_make(root, subject, meta["dataset"])
        raise FileNotFoundError(f"dataset root {root} does not exist; {fix}, or pass another --data-root")
    test = loaders.load(detect_dataset(root) or meta["dataset"], root, subject=subject, split="test")
    if not isinstance(model, TrainedModel):
        return load_model(path, data=test, conditioning=conditioning, device=device, progress=progress), test, root
    export.check_compatible(meta, export.describe(test, model.encoder, conditioning or meta["conditioning"]),
                            source=path)
    return model, test, root


def _ridge_prediction(encoder, test, root: Path, progress: bool):
    """The ridge baseline's test predictions and its penalty, fitted on the training split's pooled CLIP features."""
    from i2b_minimal.evaluation.baselines import RidgeEncoder

    training = loaders.load(test.dataset, root, subject=test.subject, split="train")
    _, train_pooled = feature_cache.encode_dataset(encoder, training.image_paths, root / "features", progress=progress)
    _, test_pooled = feature_cache.encode_dataset(encoder, test.image_paths, root / "features", progress=progress)
    linear = RidgeEncoder().fit(train_pooled, training.mean_over_repetitions())
    return linear.predict(test_pooled), linear.alpha_
