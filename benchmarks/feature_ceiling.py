"""How far can a linear read-out of each image representation go? Ridge from features to responses (a measurement).

The diffusion model's conditional mean cannot know more about an image than
its CLIP features carry. On the synthetic world the simulated brain responds
to 11 low-level properties of each picture (``world/pictures.image_features``:
side, height, size, contrast, luminance, shape complexity and roundness, hue,
saturation, texture energy), so ridge from those properties themselves, and
from them with their pairwise products (the brain's law multiplies some of
them: a stimulus on one side drives the opposite hemisphere more), says how
much of the ceiling a good image representation allows a linear map, next to
ridge from the tiny CLIP's pooled embedding, its mean token and all its tokens.

Every ridge is ``evaluation.baselines.RidgeEncoder`` (penalty by contiguous
5-fold cross-validation on the training images), fitted on the training split
and scored on the test split by the correlation across images (``t >= 0``).

Run: ``python benchmarks/feature_ceiling.py`` (about a minute on 2 cores; the world and the tiny-CLIP features are
made and cached on first use). Results: ``benchmarks/results/feature_ceiling.md``.
"""

from __future__ import annotations

import datetime
import itertools
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from i2b_minimal import metrics, synthetic
from i2b_minimal.datasets import features as feature_cache
from i2b_minimal.datasets import loaders
from i2b_minimal.evaluation.baselines import RidgeEncoder
from i2b_minimal.method import clip
from i2b_minimal.world import pictures
from i2b_minimal.world.tiny_clip import PROBE_ALPHAS


def property_matrix(root, image_paths) -> tuple[np.ndarray, list[str]]:
    """The 11 low-level properties the simulated brain responds to, one row per image of ``image_paths``, and
    their names in column order."""
    table = pd.read_csv(root / "ground_truth" / "images.csv").set_index("image_path")
    rows = table.loc[[Path(path).relative_to(root).as_posix() for path in image_paths]]  # the CSV's paths are relative
    values = pictures.image_features(rows.drop(columns=["split", "concept", "caption"]).to_dict("records"))
    return np.stack(list(values.values()), axis=1), list(values)


def with_products(x: np.ndarray) -> np.ndarray:
    """``x`` with every pairwise product of its standardised columns appended (a quadratic read-out)."""
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    return np.concatenate([x] + [(z[:, i] * z[:, j])[:, None] for i, j in itertools.combinations(range(x.shape[1]), 2)],
                          axis=1)


def predicted_properties(train_x, test_x, train_props) -> tuple[np.ndarray, np.ndarray]:
    """Each property predicted linearly from the features (standardised, ridge with a leave-one-out penalty among
    the tiny CLIP probes' ``PROBE_ALPHAS``, one penalty for all properties): out-of-fold on the training images (5
    folds, so the second stage never sees a fitted-on prediction), and from a fit on all of them for the test
    images."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), RidgeCV(alphas=PROBE_ALPHAS))
    return cross_val_predict(probe, train_x, train_props, cv=5), probe.fit(train_x, train_props).predict(test_x)


def with_column(x: np.ndarray, column: int, source: np.ndarray) -> np.ndarray:
    """A copy of ``x`` whose ``column`` is ``source``'s."""
    swapped = x.copy()
    swapped[:, column] = source[:, column]
    return swapped


def two_stage_table(score, names, train_props, test_props, predicted) -> list[str]:
    """Which property's shortfall costs the read-out most? Ridge to the EEG from the predicted properties, with the
    true value of one property swapped in, and from the true properties with that one's prediction swapped in."""
    from sklearn.metrics import r2_score

    train_pred, test_pred = predicted
    r2 = r2_score(test_props, test_pred, multioutput="raw_values")
    rows = [f"| (none) | | {score(train_pred, test_pred):.3f} | {score(train_props, test_props):.3f} |"]
    for i, name in enumerate(names):
        truth_in = score(with_column(train_pred, i, train_props), with_column(test_pred, i, test_props))
        prediction_in = score(with_column(train_props, i, train_pred), with_column(test_props, i, test_pred))
        rows.append(f"| {name} | {r2[i]:.2f} | {truth_in:.3f} | {prediction_in:.3f} |")
    return rows


def main() -> None:
    began, load = time.perf_counter(), os.getloadavg()
    root = synthetic.ensure_dataset(None, "eeg", "small", subjects=[1])
    training = loaders.load("things-eeg2", root, subject=1, split="train")
    test = loaders.load("things-eeg2", root, subject=1, split="test")
    encoder = clip.ImageEncoder("tiny", progress=False)
    train_tokens, train_pooled = feature_cache.encode_dataset(encoder, training.image_paths, root / "features",
                                                              progress=False)
    test_tokens, test_pooled = feature_cache.encode_dataset(encoder, test.image_paths, root / "features",
                                                            progress=False)
    (train_props, names), (test_props, _) = (property_matrix(root, d.image_paths) for d in (training, test))
    views = {
        "the 11 properties the brain responds to (oracle)": (train_props, test_props, "mean"),
        "the 11 properties and their pairwise products (oracle)": (with_products(train_props),
                                                                   with_products(test_props), "mean"),
        "tiny CLIP, pooled embedding (what ridge in `i2b evaluate` reads)": (train_pooled, test_pooled, "mean"),
        "tiny CLIP, mean token": (train_tokens, test_tokens, "mean"),
        "tiny CLIP, all tokens flattened (what cross-attention reads)": (train_tokens, test_tokens, "flatten"),
    }
    truth = synthetic.load_ground_truth(root, 1, test.image_paths)
    true_ceiling = metrics.post_stimulus_mean(metrics.true_noise_ceiling(truth, test.signals), test.times)
    ceiling = metrics.noise_ceiling_summary(test.signals, test.times, progress=False)
    target = test.mean_over_repetitions()
    print("# How far a linear read-out of each representation goes\n")
    print(f"`python benchmarks/feature_ceiling.py`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"load average {load[0]:.2f}. Synthetic `small` EEG world, subject 1: ridge fitted on "
          f"{training.n_images} training images (repetition means), scored on {test.n_images} test images.\n")
    print("| features | dimensions | corr. across images | fraction of the true ceiling | penalty (CV) |")
    print("|---|---:|---:|---:|---:|")
    for name, (fit_x, test_x, tokens) in views.items():
        ridge = RidgeEncoder(tokens=tokens, progress=False).fit(fit_x, training.mean_over_repetitions())
        score = metrics.post_stimulus_mean(metrics.correlation_across_images(ridge.predict(test_x), target), test.times)
        dims = fit_x.shape[-1] if tokens == "mean" else int(np.prod(fit_x.shape[1:]))  # what ridge reads per image
        print(f"| {name} | {dims:,} | {score:.3f} | {score / true_ceiling:.2f} | {ridge.alpha_:.3g} |", flush=True)
    print(f"\nTrue ceiling (the noiseless responses) {true_ceiling:.3f}; noise ceiling (Spearman-Brown) {ceiling:.3f}; "
          f"0.9 x the noise ceiling = {0.9 * ceiling:.3f}.\n")

    def score(fit_x, test_x):
        ridge = RidgeEncoder(tokens="mean", progress=False).fit(fit_x, training.mean_over_repetitions())
        return metrics.post_stimulus_mean(metrics.correlation_across_images(ridge.predict(test_x), target), test.times)

    print("Two stages, from the pooled embedding: each property predicted from it (R^2 on the test images), then ridge "
          "to the EEG from the 11 predictions; with the true value of one property in place of its prediction, and "
          "from the 11 true properties with that one's prediction in place of its truth.\n")
    print("| property | R^2 of its prediction | predictions, this one true | truths, this one predicted |")
    print("|---|---:|---:|---:|")
    predicted = predicted_properties(np.asarray(train_pooled), np.asarray(test_pooled), train_props)
    print("\n".join(two_stage_table(score, names, train_props, test_props, predicted)))
    print(f"\nWhole run {time.perf_counter() - began:.0f} s.")


if __name__ == "__main__":
    main()
