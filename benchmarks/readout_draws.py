"""How much the conditional-mean readout loses to its Monte Carlo draws of x_T (measured, without any responses).

The headline readout averages the denoiser's x_0 at the noisiest step over M draws of x_T (``method/readouts.py``,
M = ``readouts.DEFAULT_DRAWS``). A finite M adds noise to each image's prediction. Writing one draw's x_0 as
m_i + e (m_i the image's readout at M = infinity, e the draw's deviation, of variance W), the M-draw readout is
m_i + e_M with Var(e_M) = W / M, independent of the data, so its correlation with any target across images is
that of m times sqrt(S / (S + W / M)), S being the variance of m across images. Both W and S come from the
model alone: no recorded response is read, so M can be judged here without looking at any score.

The images are every 8th training image of the model's first subject (at most ``--images``), encoded by the
model's own CLIP.

Run: ``python benchmarks/readout_draws.py`` (bundled EEG model: about 20 s on one core).
Results: ``benchmarks/results/readout_draws.md``.
"""

from __future__ import annotations

import argparse
import datetime

import numpy as np

from i2b_minimal import pipeline
from i2b_minimal.datasets import features as feature_cache
from i2b_minimal.datasets import loaders
from i2b_minimal.method import readouts

DRAW_COUNTS = (1, 4, readouts.DEFAULT_DRAWS, 64, 256)


def variance_parts(draws: np.ndarray) -> tuple[float, float]:
    """(W, S) from single-draw readouts ``draws`` (n_draws, n_images, C, T): the variance of one draw about its
    image's mean, and the variance across images of the images' means with the draws' share (W / n_draws)
    taken out, each averaged over channels and times."""
    within = float(draws.var(axis=0, ddof=1).mean())
    means = draws.mean(axis=0)
    across = float(means.var(axis=0).mean()) - within / len(draws)
    return within, across


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="bundled", help="model folder, run folder or 'bundled'")
    parser.add_argument("--images", type=int, default=200, help="training images read (every 8th)")
    parser.add_argument("--draws", type=int, default=32, help="single draws of x_T per image")
    args = parser.parse_args()

    trained = pipeline.load_model(args.checkpoint, progress=False)
    root = pipeline.training_root(trained.meta)
    subject = trained.subjects[0]
    train = loaders.load(trained.meta["dataset"], root, subject=subject, split="train")
    paths = list(train.image_paths[::8][:args.images])
    cond = trained.condition(*feature_cache.encode_dataset(trained.encoder, paths, root / "features", progress=False))
    # One draw per call, each from its own seed: independent draws of x_T for every image.
    draws = np.stack([trained.conditional_mean(cond, len(paths), subject, num_draws=1, seed=1000 + d)
                      for d in range(args.draws)])
    within, across = variance_parts(draws)

    print(f"# The conditional-mean readout's Monte Carlo cost: {args.checkpoint}, subject {subject}\n")
    print(f"{len(paths)} training images x {args.draws} single draws of x_T. Variance of one draw's x_0 about its "
          f"image's mean W = {within:.3g}; variance across images of the mean S = {across:.3g}; W / S = "
          f"{within / across:.4f}.\n")
    print("| draws M | correlation kept, sqrt(S / (S + W / M)) |")
    print("|---:|---|")
    for count in DRAW_COUNTS:
        default = " (the default)" if count == readouts.DEFAULT_DRAWS else ""
        print(f"| {count}{default} | {np.sqrt(across / (across + within / count)):.4f} |")
    print(f"\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, checkpoint {args.checkpoint}")


if __name__ == "__main__":
    main()
