"""``i2b evaluate``: generate the test images of a dataset and score them, next to two baselines and two ceilings.

Scored as the paper scores (MSE, Pearson), as encoding models are scored
(correlation across images against a noise ceiling) and by identification
(Kay et al. 2008, on image-centred patterns), for **three readouts** of the
diffusion model (``method/readouts.py``):

* ``conditional_mean``: the denoiser's x_0 at the noisiest step, averaged over
  ``num_draws`` draws of x_T, an estimate of E[x_0 | image]. The headline
  (``model``), because encoding models are scored on the expected response;
* ``mean_of_k``: the mean of ``samples_per_image`` full samples, which keeps
  1/K of a sample's variability, so its correlation is capped below the
  ceiling even for a perfect sampler;
* ``single``: one sample (``model_single_sample`` too, the key's old name).

Next to two baselines on the same CLIP features, both fitted on the training
split only: ridge regression (the reviewers of arXiv 2509.00787 asked for it)
and the **generative baseline**, ridge plus Gaussian trial noise fitted to the
training residuals (``evaluation/gaussian_baseline.py``). Its conditional mean
is ridge exactly, so ``generative_baseline`` scores its ``mean_of_k`` (the
same K as the model) and ``generative_baseline_readouts`` holds all three.
``single_trial`` compares the K samples per image of each generator with the
test images' recorded single trials (``evaluation/single_trial.py``).

Ceilings: ``noise_ceiling`` (split halves stepped up by Spearman-Brown, the
ceiling of a score against the average of all repetitions, as ``model`` is
scored), ``noise_ceiling_gifford`` (Gifford et al. 2022's lower and upper
bounds, for published THINGS-EEG2 numbers; ``gifford_score`` scores the
predictions under that protocol, against half the repetitions) and, where a
synthetic world saved its noiseless responses, ``true_noise_ceiling``.

Subjects. ``subject`` (default: the model's first) says whose test data is scored. When the model was
trained on that subject, ``subject_relation`` is ``"within"``; otherwise ``"cross"``: a multi-subject model
generates for it with the mean of its subject embeddings, a model of one subject with its own subject's
responses (``method/subjects.py``). Ridge and the generative baseline are always fitted on the scored
subject's own training split: within-subject baselines, the bar a cross-subject model is measured against.

Splits. Everything fitted here is fitted on the training split: ridge (its
penalty chosen by cross-validation over contiguous folds of the training
images, ``evaluation/baselines.py``), the baseline's noise covariance, the
channel statistics of the model. The test split is only scored. Nothing here
is chosen by looking at scores: the sampling settings and ``num_draws`` are
fixed in advance. Whatever is tuned on scores (steps, guidance, M, ...) must
be tuned on ``datasets.splits.split_training_data``, never on this test set:
``split="validation"`` scores a model trained with ``hold_out_validation`` on
the held-out validation images instead, with the baselines fitted on the rest.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from i2b_minimal.datasets import features as feature_cache
from i2b_minimal.datasets import loaders, splits
from i2b_minimal.datasets.things_format import detect_dataset
from i2b_minimal.evaluation import ceilings, metrics, single_trial
from i2b_minimal.method import clip, readouts
from i2b_minimal.training import export

from .data_roots import how_to_make, training_root
from .trained_model import SamplingSettings, TrainedModel, load_model, resolve_model, sampling_settings

EVALUATION_SAMPLING = SamplingSettings(samples_per_image=4)  # what `i2b evaluate` and the model cards use
READOUTS = ("conditional_mean", "mean_of_k", "single")


def evaluate(model="bundled", data_root=None, subject: int | None = None, sampling: SamplingSettings | None = None,
             *, conditioning: str | None = None, ridge: bool = True, ridge_encoder: str = "tiny",
             num_draws: int = readouts.DEFAULT_DRAWS, device=None, progress: bool = True,
             return_signals: bool = False, split: str = "test", **options):
    """Score a model on the test split of ``data_root`` (default: the data it was trained on).

    ``split="validation"``: on the validation images instead (``datasets/splits.py``), for model
    selection; the model must have been trained without them (``hold_out_validation``).

    ``sampling`` (default :data:`EVALUATION_SAMPLING`), or its fields as keywords
    (``samples_per_image=4, num_inference_steps=50``...), says how to sample;
    ``num_draws`` is M, the draws of x_T behind the conditional mean.
    ``ridge=False`` skips both baselines. ``ridge_encoder`` encodes the images
    for the baselines when the model has no encoder of its own (``conditioning="none"``).

    Returns the ``i2b evaluate --json`` dict (the module docstring names its
    keys); then the settings and the data it was run with, and ``seconds``.
    Every score dict holds ``metrics.evaluate``'s keys. No value is NaN or
    infinite: such a value is None, and ``nulls`` says where and why. With
    ``return_signals`` also a dict of the arrays behind the scores.
    """
    began = time.perf_counter()
    settings = sampling_settings(sampling or EVALUATION_SAMPLING, **options)
    trained, test, root = _model_and_test_data(model, data_root, subject, conditioning, device, progress, split)
    cond = None
    if trained.encoder is not None:
        cond = trained.condition(*feature_cache.encode_dataset(trained.encoder, test.image_paths, root / "features",
                                                               progress=progress))
    start = time.perf_counter()
    samples = trained.sample(cond, test.n_images, settings, progress, subject=test.subject)
    timings = {"sampling": round(time.perf_counter() - start, 2)}
    start = time.perf_counter()
    predictions = readouts.readout_predictions(samples, trained.conditional_mean(
        cond, test.n_images, test.subject, num_draws=num_draws, seed=settings.seed, batch_size=settings.batch_size))
    timings["conditional_mean"] = round(time.perf_counter() - start, 2)

    def score(prediction):
        return metrics.evaluate(prediction, test.signals, test.times, test.sfreq, test.ch_type)

    def gifford(prediction):
        return metrics.post_stimulus_mean(ceilings.gifford_score(prediction, test.signals), test.times)

    scored = {name: score(predictions[name]) for name in READOUTS}
    result = {"conditioning": trained.conditioning, "model": scored["conditional_mean"], "readouts": scored,
              "model_single_sample": scored["single"],
              "noise_ceiling": metrics.noise_ceiling_summary(test.signals, test.times, progress=progress),
              "noise_ceiling_gifford": ceilings.noise_ceiling_gifford_summary(test.signals, test.times,
                                                                              progress=progress),
              "gifford_score": {"model": gifford(predictions["conditional_mean"])}}
    signals = {"real": test.mean_over_repetitions(), "generated": predictions["conditional_mean"],
               "readouts": predictions, "samples": samples, "times": test.times, "ch_names": test.ch_names,
               "ch_type": test.ch_type, "sfreq": test.sfreq, "image_paths": test.image_paths}
    trials = {"model": samples}
    if ridge:
        start = time.perf_counter()
        encoder = trained.encoder or clip.ImageEncoder(ridge_encoder, device=device, progress=progress)
        signals["ridge"], alpha, trials["generative_baseline"] = _baselines(encoder, test, root, settings, progress,
                                                                            split)
        baseline = readouts.readout_predictions(trials["generative_baseline"], signals["ridge"])
        result["ridge"] = {**score(signals["ridge"]), "alpha": alpha}
        result["generative_baseline_readouts"] = {name: score(baseline[name]) for name in READOUTS}
        result["generative_baseline"] = result["generative_baseline_readouts"]["mean_of_k"]
        result["gifford_score"]["ridge"] = gifford(signals["ridge"])
        signals["generative_baseline"] = trials["generative_baseline"]
        timings["baselines"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    result["single_trial"] = _single_trials(trials, test)
    timings["single_trial"] = round(time.perf_counter() - start, 2)
    if (root / "ground_truth").is_dir():
        from i2b_minimal.world import synthetic

        signals["ground_truth"] = synthetic.load_ground_truth(root, test.subject, test.image_paths)
        result["true_noise_ceiling"] = metrics.post_stimulus_mean(
            metrics.true_noise_ceiling(signals["ground_truth"], test.signals), test.times)
        result["ground_truth"] = score(signals["ground_truth"])
    timings["total"] = round(time.perf_counter() - began, 2)
    steps = settings.num_inference_steps if settings.sampler == "ddim" else trained.schedule.num_train_timesteps
    result.update(samples_per_image=settings.samples_per_image, num_draws=num_draws, sampler=settings.sampler,
                  num_inference_steps=steps, eta=settings.eta if settings.sampler == "ddim" else None,
                  guidance_scale=settings.guidance_scale, seed=settings.seed,
                  checkpoint=str(trained.path), dataset=test.dataset, data_root=str(root), subject=test.subject,
                  trained_subjects=trained.subjects,
                  subject_relation="within" if test.subject in trained.subjects else "cross", split=split,
                  n_test_images=test.n_images, n_test_repetitions=test.n_repetitions, seconds=timings)
    result = finite_json(result)
    return (result, signals) if return_signals else result


def finite_json(result: dict) -> dict:
    """``result`` with every NaN or infinite float replaced by None, and ``nulls``: {"a.b.c": why} for each.

    JSON has no NaN nor Infinity (Python writes them, other readers refuse
    them), and a number that is not one should say so rather than pass as 0.
    """
    nulls = {}

    def clean(value, path):
        if isinstance(value, dict):
            return {key: clean(item, f"{path}.{key}" if path else key) for key, item in value.items()}
        if isinstance(value, float) and not math.isfinite(value):
            nulls[path] = f"{value} is not a number JSON can hold (see the docstring of the score)"
            return None
        return value

    cleaned = clean(result, "")
    if nulls:
        cleaned["nulls"] = {**cleaned.get("nulls", {}), **nulls}
    return cleaned


def _single_trials(trials: dict, test) -> dict:
    """``single_trial.compare_single_trials`` for each generator's samples, or None with the reason."""
    k = trials["model"].shape[1]
    if k < 2 or test.n_repetitions < 2:
        reason = (f"single-trial checks need at least 2 samples and 2 recorded trials per image; there are {k} "
                  f"and {test.n_repetitions}")
        return {**{name: None for name in ("model", "generative_baseline")}, "reason": reason}
    out = {}
    for name, samples in trials.items():
        try:
            out[name] = single_trial.compare_single_trials(samples, test.signals, test.sfreq)
        except ValueError as error:  # e.g. a rank-deficient (average-referenced) trial covariance
            out[name], out["reason"] = None, f"{name}: {error}"
    return out


def _model_and_test_data(model, data_root, subject, conditioning, device, progress, split="test"):
    """The model (loaded when given by name), the images it is scored on (``split``), and their root.

    Refuses a model made for other data or another conditioning, or one that saw the validation images
    it would be scored on, before any sampling.
    """
    if split not in splits.SCORED_SPLITS:
        raise ValueError(f"split must be one of {splits.SCORED_SPLITS}, not {split!r}")
    path = model.path if isinstance(model, TrainedModel) else resolve_model(model)
    meta = model.meta if isinstance(model, TrainedModel) else export.read_meta(path)
    if split == "validation" and not meta.get("hold_out_validation"):
        raise ValueError(f"the model at {path} was trained on the validation images too, so scoring it on them says "
                         "nothing about new images; train it with --hold-out-validation (TrainConfig."
                         "hold_out_validation=True) to score it on split='validation'")
    root = Path(data_root) if data_root is not None else training_root(meta)
    subject = int(subject if subject is not None else export.trained_subjects(meta)[0])
    if not root.is_dir():
        fix = how_to_make(root, subject, meta["dataset"])
        raise FileNotFoundError(f"dataset root {root} does not exist; {fix}, or pass another --data-root")
    test = _scored_images(detect_dataset(root) or meta["dataset"], root, subject, split)
    if not isinstance(model, TrainedModel):
        return load_model(path, data=test, conditioning=conditioning, device=device, progress=progress), test, root
    export.check_compatible(meta, export.describe(test, model.encoder, conditioning or meta["conditioning"]),
                            source=path)
    return model, test, root


def _scored_images(dataset: str, root: Path, subject: int, split: str):
    """What is scored: the test split, or the validation images of the training split."""
    if split == "validation":
        return splits.split_training_data(loaders.load(dataset, root, subject=subject, split="train"))[1]
    return loaders.load(dataset, root, subject=subject, split="test")


def _fitted_images(dataset: str, root: Path, subject: int, split: str):
    """What the baselines fit on: the training split, less its validation images when those are scored."""
    training = loaders.load(dataset, root, subject=subject, split="train")
    return splits.split_training_data(training)[0] if split == "validation" else training


def _baselines(encoder, test, root: Path, settings: SamplingSettings, progress: bool, split: str = "test"):
    """Ridge's test predictions, its penalty, and the generative baseline's ``samples_per_image`` samples per image.

    Both are fitted on the training split only (less the validation images when those are scored), on its
    pooled CLIP features:
    ridge on the repetition means, the baseline's noise on the single trials
    about ridge's fit. The baseline samples with the sampling seed.
    """
    from i2b_minimal.evaluation.baselines import RidgeEncoder
    from i2b_minimal.evaluation.gaussian_baseline import GaussianResidualBaseline

    training = _fitted_images(test.dataset, root, test.subject, split)
    _, train_pooled = feature_cache.encode_dataset(encoder, training.image_paths, root / "features", progress=progress)
    _, test_pooled = feature_cache.encode_dataset(encoder, test.image_paths, root / "features", progress=progress)
    linear = RidgeEncoder(progress=progress).fit(train_pooled, training.mean_over_repetitions())
    generative = GaussianResidualBaseline(ridge=linear).fit(train_pooled, training.signals)
    samples = generative.sample(test_pooled, settings.samples_per_image, seed=settings.seed)
    return linear.predict(test_pooled), linear.alpha_, samples
