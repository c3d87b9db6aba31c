"""The bundled recipe conditioned on what the simulated brain responds to: do the features or the generator cap it?

Issue 12 asks the conditional mean for 0.9 x the noise ceiling; with the tiny CLIP's features the bundled EEG model
reached 0.80 when this was written (1600 steps) and 0.92 at 12800. This trains the bundled EEG recipe (the training config in the bundled model's ``meta.json``, only
the output folder changed) with each image's CLIP tokens replaced by the world's 11 true properties
(``feature_ceiling.property_matrix``): token j holds property j, standardised over the training images, on axis j
of a token as wide as the tiny CLIP's, so the network, its cross-attention and its training are the bundled ones.
It is scored as the bundled model is (``pipeline.evaluate``, the test split), with ridge from the same properties
beside it, and the bundled model on the same images. An upper bound for image features, not a model: nothing
computes these properties from a real picture.

The swap patches ``datasets.features.encode_dataset``, the one function through which training and evaluation
read image features, for the duration of the run; the bundled model is scored outside the patch.

Run: ``python benchmarks/property_bound.py --out /tmp/property-bound`` (about 20 minutes on 2 cores).
Results: ``benchmarks/results/property_bound.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from c2st_bounds import table  # benchmarks/ is on sys.path when this script runs
from feature_ceiling import property_matrix
from i2b_minimal import pipeline, synthetic, train
from i2b_minimal.datasets import features

TOKEN_WIDTH = 128  # the tiny CLIP's token width: the bundled network's cross-attention takes tokens this wide


def property_features(root: Path):
    """A stand-in for ``features.encode_dataset``: (tokens, pooled) of the images' standardised true properties."""
    captions = synthetic.load_captions(root)
    training_paths = [root / path for path in captions.loc[captions["split"] == "train", "image_path"]]
    training, names = property_matrix(root, training_paths)
    centre, scale = training.mean(axis=0), training.std(axis=0)

    def encode_dataset(encoder, image_paths, cache_dir, progress=True):
        z = (property_matrix(root, image_paths)[0] - centre) / scale
        tokens = np.zeros((len(z), len(names), TOKEN_WIDTH), dtype=np.float32)
        tokens[:, np.arange(len(names)), np.arange(len(names))] = z  # token j: property j on axis j
        pooled = np.zeros((len(z), TOKEN_WIDTH), dtype=np.float32)
        pooled[:, :len(names)] = z
        return torch.from_numpy(tokens), torch.from_numpy(pooled)

    return encode_dataset


def summary(result: dict) -> list[str]:
    model, single = result["model"], result["single_trial"]["model"]
    ceiling = result["noise_ceiling"]
    return [f"{model['corr_across_images']:.3f}", f"{model['corr_across_images'] / ceiling:.2f}",
            f"{result['ridge']['corr_across_images']:.3f}", f"{model['identification_2way']:.3f}",
            f"{single['dispersion_ratio_min']:.3f}-{single['dispersion_ratio_max']:.3f}",
            f"{single['c2st_accuracy']:.3f}"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the training run's folder")
    parser.add_argument("--subject", type=int, default=1)
    args = parser.parse_args(argv)
    began = datetime.datetime.now(datetime.timezone.utc)
    bundled = pipeline.resolve_model("bundled")
    recipe = json.loads((bundled / "meta.json").read_text())["config"]
    root = synthetic.ensure_dataset(None, recipe["modality"], "small", subjects=recipe["subjects"])
    config = dataclasses.replace(train.TrainConfig(**recipe), data_root=str(root), output_dir=str(args.out))
    with mock.patch.object(features, "encode_dataset", property_features(root)):
        run = train.train(config, overwrite=True, progress=True)
        bound = pipeline.evaluate(run.model_dir, root, subject=args.subject, progress=False)
    scored = pipeline.evaluate("bundled", root, subject=args.subject, progress=False)
    header = ["condition", "conditional mean", "/ noise ceiling", "ridge (same features)", "2-way",
              "dispersion", "C2ST"]
    rows = [["the world's 11 true properties (this run)", *summary(bound)],
            ["the tiny CLIP's tokens (the bundled model)", *summary(scored)]]
    print(table(header, rows))
    print(f"\nsubject {args.subject}, noise ceiling {bound['noise_ceiling']:.3f}, true ceiling "
          f"{bound['true_noise_ceiling']:.3f}; {began:%Y-%m-%d %H:%M}-"
          f"{datetime.datetime.now(datetime.timezone.utc):%H:%M} UTC")


if __name__ == "__main__":
    main()
