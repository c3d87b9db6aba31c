"""How good are the generated signals? Tables on the synthetic test set, where the truth is known.

On the ``small`` synthetic EEG world (subject 1; 1600 training images x 4
repetitions, 100 test images x 40 repetitions), in parts (``--parts``):

* ``perfect``: the **perfect-sampler table**. A "model" whose samples are the
  noiseless truth plus training-level noise (the noise of a random training
  image's 4-repetition average, what the models are trained on) is read out
  as a diffusion model is: the mean of K = 1, 4, 16, 64 samples against the
  ceilings, and its conditional mean, the truth itself, which reaches the
  true ceiling. It shows why a mean of K samples is capped. Seconds.
* ``bundled``: the bundled model's three readouts, ridge, the generative
  baseline, both ceilings and the single-trial checks (``pipeline.evaluate``,
  what ``i2b evaluate`` runs). Minutes.
* ``ablation``: one model per conditioning mode (``cross_attention``,
  ``concat``, ``add``, ``none``), trained with the quickstart's recipe at
  ``--steps``, each scored with its three readouts, and the goals
  (:func:`goals`). About 37 minutes at 400 steps on 2 shared cores.
* ``samplers``: DDPM with all 1000 steps against DDIM with 50, one sample per
  image, on the bundled model. About 15 minutes.

Splits: every model and baseline is fitted on the training split and scored on
the test split. Nothing here is chosen by looking at scores (the recipe, the
sampling settings and M are fixed in advance); a part that tunes anything must
tune it on ``datasets.splits.split_training_data``, never on the test set.

Run: ``python benchmarks/quality.py`` (all parts), ``--parts perfect bundled``,
``--quick`` for a smoke run on the tiny world. Results: ``benchmarks/results/quality.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np

from i2b_minimal import metrics, pipeline, report, synthetic, train, unet
from i2b_minimal.datasets import loaders

PARTS = ("perfect", "bundled", "ablation", "samplers")
MODES = unet.CONDITIONING_MODES
KS = (1, 4, 16, 64)


def recipe(mode: str, root: Path, args) -> train.TrainConfig:
    """The one training recipe every conditioning mode gets: the quickstart's, at ``--steps``."""
    return train.TrainConfig(data_root=str(root), subject=1, encoder="tiny", conditioning=mode,
                             base_channels=args.width, steps=args.steps, batch_size=args.batch_size, lr=1e-3,
                             warmup_steps=min(100, args.steps // 10), checkpoint_every=args.steps,
                             prediction_type="v_prediction", output_dir=str(Path(args.runs) / mode), seed=0)


def perfect_sampler(root: Path, seed: int = 0) -> str:
    """The perfect-sampler table (module docstring) as markdown."""
    test = loaders.load("things-eeg2", root, subject=1, split="test")
    training = loaders.load("things-eeg2", root, subject=1, split="train")
    truth = synthetic.load_ground_truth(root, 1, test.image_paths)
    # Training-level noise: a training image's repetition average minus its noiseless response.
    noise = training.mean_over_repetitions() - synthetic.load_ground_truth(root, 1, training.image_paths)
    draws = np.random.default_rng(seed).integers(len(noise), size=(test.n_images, max(KS)))
    samples = truth[:, None] + noise[draws]

    def score(prediction):
        return metrics.evaluate(prediction, test.signals, test.times, test.sfreq, test.ch_type)

    rows = [(f"mean of K = {k} samples", score(samples[:, :k].mean(axis=1))) for k in KS]
    rows.append(("conditional mean (the truth)", score(truth)))
    ceiling = metrics.noise_ceiling_summary(test.signals, test.times, progress=False)
    true = metrics.post_stimulus_mean(metrics.true_noise_ceiling(truth, test.signals), test.times)
    return (report.score_table(rows) + f"\n\nNoise ceiling (Spearman-Brown) {ceiling:.3f}; true ceiling {true:.3f}. "
            f"{test.n_images} test images x {test.n_repetitions} repetitions; training noise from "
            f"{training.n_images} images x {training.n_repetitions} repetitions, drawn with seed {seed}.")


def evaluation_tables(result: dict) -> str:
    """One evaluation's score table (readouts and baselines), ceilings and single-trial table, as markdown."""
    text = report.score_table(report.score_rows(result)) + "\n\n" + report.ceiling_sentence(result)
    if any(result["single_trial"].get(name) for name, _ in report.GENERATORS):
        text += "\n\nSingle trials against the test images' recorded trials:\n\n" + report.single_trial_table(result)
    return text


def ablation(root: Path, args) -> tuple[str, dict]:
    """Every conditioning mode trained with :func:`recipe` and read out three ways; the table and the results."""
    rows, results = [], {}
    for mode in MODES:
        start = time.perf_counter()
        run = train.train(recipe(mode, root, args), overwrite=True)
        trained_s = time.perf_counter() - start
        results[mode] = pipeline.evaluate(pipeline.load_model(run.model_dir), root,
                                          samples_per_image=args.samples_per_image, ridge=mode == "cross_attention",
                                          progress=False)
        for readout, scores in results[mode]["readouts"].items():
            rows.append((f"{mode}, {readout}", scores))
        print(f"{mode}: trained in {trained_s:.0f} s, sampled in {results[mode]['seconds']['sampling']:.0f} s")
    reference = results["cross_attention"]
    rows += [("ridge (same CLIP features)", reference["ridge"]),
             (f"generative baseline, mean of {args.samples_per_image}", reference["generative_baseline"])]
    return report.score_table(rows) + "\n\n" + report.ceiling_sentence(reference), results


def samplers(root: Path) -> tuple[str, dict]:
    """DDIM 50 against DDPM 1000 on the bundled model, one sample per image and the same seed."""
    rows, scores = [], {}
    for sampler in ("ddim", "ddpm"):
        result = pipeline.evaluate("bundled", root, samples_per_image=1, sampler=sampler, num_inference_steps=50,
                                   ridge=False, progress=False)
        scores[sampler] = result["readouts"]["single"]
        rows.append((f"{sampler.upper()} {result['num_inference_steps']}, 1 sample "
                     f"({result['seconds']['sampling']:.0f} s)", scores[sampler]))
    return report.score_table(rows), scores


def goals(results: dict, sampler_scores: dict | None) -> list[str]:
    """The quality goals on the headline readout, each with its value and margin (positive: met by).

    The cross-attention model within 10% of the noise ceiling, near-perfect (centred) 2-way
    identification, ahead of the other conditioning modes and of ridge; and DDIM's 50 steps nearly as
    good as DDPM's 1000 (one sample each, where the samplers differ).
    """
    cross = results["cross_attention"]
    corr, ceiling = cross["model"]["corr_across_images"], cross["noise_ceiling"]
    rivals = {mode: results[mode]["model"]["corr_across_images"] for mode in ("concat", "add")}
    rivals["ridge"] = cross["ridge"]["corr_across_images"]
    checks = [("corr. across images >= 0.9 x noise ceiling", corr / ceiling, 0.9, f"{corr:.3f} / {ceiling:.3f}"),
              ("centred 2-way identification >= 0.95", cross["model"]["identification_2way"], 0.95, ""),
              *((f"cross_attention beats {name} (corr. across images)", corr - value, 0.0,
                 f"{corr:.3f} vs {value:.3f}") for name, value in rivals.items())]
    if sampler_scores:
        ddim, ddpm = (sampler_scores[s]["corr_across_images"] for s in ("ddim", "ddpm"))
        checks.append(("DDIM 50 keeps >= 0.98 of DDPM 1000's corr. across images", ddim / ddpm, 0.98,
                       f"{ddim:.3f} / {ddpm:.3f}"))
    return [f"- {'met' if value >= target else 'MISSED'}: {text}: {value:.3f} (target {target:g}, "
            f"margin {value - target:+.3f}){'; ' + detail if detail else ''}" for text, value, target, detail in checks]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run (default: all)")
    parser.add_argument("--steps", type=int, default=400, help="training steps per mode (ablation)")
    parser.add_argument("--width", type=int, default=32, help="U-Net base channels (ablation)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples-per-image", type=int, default=4, help="K, DDIM samples per test image")
    parser.add_argument("--runs", default="runs/quality", help="where the ablation's training runs go")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny world, 20 steps, width 16")
    args = parser.parse_args(argv)
    preset = "tiny" if args.quick else "small"
    if args.quick:
        args.steps, args.width, args.batch_size, args.samples_per_image = 20, 16, 16, 2
    root = synthetic.ensure_dataset(None, "eeg", preset, subjects=[1])
    began, load = time.perf_counter(), os.getloadavg()
    print(f"# Quality on the synthetic `{preset}` EEG world, subject 1\n")
    print(f"`python benchmarks/quality.py {' '.join(sys.argv[1:] if argv is None else argv)}`, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, load average {load[0]:.2f}.\n")
    sampler_scores = None
    if "perfect" in args.parts:
        print("## A perfect sampler, read out as a diffusion model is\n\n" + perfect_sampler(root) + "\n")
    if "bundled" in args.parts:
        result = pipeline.evaluate("bundled", root, samples_per_image=args.samples_per_image, progress=False)
        print(f"## The bundled model (`i2b evaluate --checkpoint bundled`, {result['seconds']['total']:.0f} s)\n\n"
              + evaluation_tables(result) + "\n")
    if "samplers" in args.parts:
        table, sampler_scores = samplers(root)
        print("## Samplers, on the bundled model\n\n" + table + "\n")
    if "ablation" in args.parts:
        table, results = ablation(root, args)
        print(f"## Conditioning modes: width {args.width}, {args.steps} steps of batch {args.batch_size}, "
              f"v-prediction, seed 0, K = {args.samples_per_image}\n\n" + table + "\n\nGoals:\n")
        print("\n".join(goals(results, sampler_scores)))
    print(f"\nLoad average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}; "
          f"whole run {time.perf_counter() - began:.0f} s.")


if __name__ == "__main__":
    main()
