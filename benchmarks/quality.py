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
* ``ablation``: every conditioning mode (``cross_attention``, ``concat``,
  ``add``, ``none``), trained with the quickstart's recipe at ``--steps`` for
  each of ``--seeds``, scored with its three readouts and the single-trial
  checks (mean ± sd over seeds), next to ridge and the ridge-plus-Gaussian
  baseline; the 95% paired-bootstrap interval of cross_attention's lead over
  each (``evaluation/bootstrap.py``), and issue 12's goals (:func:`goals`).
  About 6 minutes per training run, ``--jobs`` at a time.
* ``samplers``: DDPM with all 1000 steps against DDIM with 50, one sample per
  image, on the bundled model. About 15 minutes.
* ``subjects``: every subject of the world (``--modality``), within and across
  subjects: one model of all subjects, and one per left-out subject
  (``--held-out``), scored subject by subject (``quality_subjects.py``).
  About 4 minutes per training run on the EEG world.
* ``seeds``: the bundled model's own recipe (its ``meta.json``) trained with
  each of ``--seeds`` and scored with the default sampler, with issue 12's
  goals on the mean over seeds (``quality_seeds.py``). 25 to 50 minutes per
  training run on one core.
* ``recipe``: the training recipe, chosen on the **validation** split: the
  quickstart's cross-attention run with each (``high_noise_fraction``,
  ``trials``) of ``--recipes``, trained with ``hold_out_validation`` and scored
  on the held-out validation concepts (``i2b evaluate --split validation``),
  next to ridge fitted on the rest. About 6 minutes per recipe on 2 cores.

Splits: every model and baseline is fitted on the training split and scored on
the test split, except in ``recipe``, which fits on the training split less its
validation concepts and scores those. Only ``recipe`` informs a choice (the
training recipe's defaults), and it never sees the test set; the sampling
settings and M are fixed in advance.

Run: ``python benchmarks/quality.py`` (all parts), ``--parts perfect bundled``,
``--quick`` for a smoke run on the tiny world; ``--modality meg --parts ablation`` trains the same recipe on the
``small`` MEG world (``--modes`` and ``--seeds`` choose what to train). Results: ``benchmarks/results/quality.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np

from i2b_minimal import metrics, pipeline, report, synthetic, unet
from i2b_minimal.datasets import loaders
from i2b_minimal.evaluation import bootstrap
from quality_runs import recipe, run_all, spread  # benchmarks/ is on sys.path when this script runs
from quality_seeds import seeds_part
from quality_subjects import subjects_part

PARTS = ("perfect", "bundled", "ablation", "samplers", "recipe", "subjects", "seeds")
MODES = unet.CONDITIONING_MODES
KS = (1, 4, 16, 64)


def recipe_choice(root: Path, args) -> str:
    """Each (high-noise fraction, trials) of ``--recipes`` trained without the validation concepts, scored on them."""
    configs = []
    for text in args.recipes:
        fraction, trials = text.split(":")
        configs.append(dataclasses.replace(recipe("cross_attention", root, args), high_noise_fraction=float(fraction),
                                           trials=trials, hold_out_validation=True,
                                           output_dir=str(Path(args.runs) / f"recipe-{fraction}-{trials}")))
    done = run_all([(config, root, "validation", args.samples_per_image, i == 0) for i, config in enumerate(configs)],
                   args.jobs)
    lines = ["| high_noise_fraction | trials | conditional mean | mean of K | 2-way (cond. mean) | "
             "dispersion ratio (min-max over channels) | C2ST | trained (s) |", "|---" * 8 + "|"]
    for config, (result, _, trained_s) in zip(configs, done):
        readout, single = result["readouts"], result["single_trial"]["model"]
        lines.append(f"| {config.high_noise_fraction:g} | {config.trials} | "
                     f"{readout['conditional_mean']['corr_across_images']:.3f} | "
                     f"{readout['mean_of_k']['corr_across_images']:.3f} | "
                     f"{readout['conditional_mean']['identification_2way']:.3f} | "
                     f"{single['dispersion_ratio_min']:.2f}-{single['dispersion_ratio_max']:.2f} | "
                     f"{single['c2st_accuracy']:.2f} | {trained_s:.0f} |")
    first = done[0][0]
    ridge, baseline = first["ridge"], first["single_trial"]["generative_baseline"]
    return ("\n".join(lines) + f"\n\nOn the validation split: {first['n_test_images']} images of held-out concepts "
            f"x {first['n_test_repetitions']} repetitions. Ridge (fitted on the rest): "
            f"{ridge['corr_across_images']:.3f}, 2-way {ridge['identification_2way']:.3f}; its Gaussian-residual "
            f"baseline's dispersion {baseline['dispersion_ratio_min']:.2f}-{baseline['dispersion_ratio_max']:.2f}, "
            f"C2ST {baseline['c2st_accuracy']:.2f}. " + report.ceiling_sentence(first))


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
    """Every conditioning mode, ``--seeds`` trainings each, read out three ways; the tables and the results.

    Returns {mode: [(result, arrays, seconds) per seed]}. Ridge and its generative baseline are deterministic
    given the features (the baseline samples with the sampling seed), so they are fitted once.
    """
    jobs = [(dataclasses.replace(recipe(mode, root, args), seed=seed,
                                 output_dir=str(Path(args.runs) / f"{mode}-seed{seed}")),
             root, "test", args.samples_per_image, mode == "cross_attention" and seed == args.seeds[0])
            for mode in args.modes for seed in args.seeds]
    done = iter(run_all(jobs, args.jobs))
    results = {mode: [next(done) for _ in args.seeds] for mode in args.modes}
    first = results["cross_attention"][0][0]

    lines = ["| | conditional mean | mean of K | 1 sample | 2-way (cond. mean) | dispersion, lowest channel | "
             "highest | C2ST | trained (s) |", "|---" * 9 + "|"]
    for mode, runs in results.items():
        readouts = [r["readouts"] for r, _, _ in runs]
        single = [r["single_trial"]["model"] for r, _, _ in runs]
        lines.append(f"| {mode} | " + " | ".join(
            [spread([x[k]["corr_across_images"] for x in readouts]) for k in ("conditional_mean", "mean_of_k", "single")]
            + [spread([x["conditional_mean"]["identification_2way"] for x in readouts])]
            + [spread([x[k] for x in single]) for k in ("dispersion_ratio_min", "dispersion_ratio_max", "c2st_accuracy")]
            + [f"{np.mean([t for _, _, t in runs]):.0f}"]) + " |")
    baseline = first["single_trial"]["generative_baseline"]
    lines.append(f"| ridge (same CLIP features) | {first['ridge']['corr_across_images']:.3f} | | | "
                 f"{first['ridge']['identification_2way']:.3f} | | | | |")
    lines.append(f"| generative baseline (ridge + Gaussian residuals) | "
                 f"{first['generative_baseline_readouts']['conditional_mean']['corr_across_images']:.3f} | "
                 f"{first['generative_baseline']['corr_across_images']:.3f} | "
                 f"{first['generative_baseline_readouts']['single']['corr_across_images']:.3f} | | "
                 f"{baseline['dispersion_ratio_min']:.2f} | {baseline['dispersion_ratio_max']:.2f} | "
                 f"{baseline['c2st_accuracy']:.2f} | |")
    intervals = differences(results)
    table = ["| cross_attention minus | difference in corr. across images | 95% interval (paired bootstrap over "
             "test images, seeds averaged) |", "|---|---|---|"]
    table += [f"| {name} | {i['difference']:+.3f} | [{i['low']:+.3f}, {i['high']:+.3f}] |" for name, i in intervals.items()]
    text = ("\n".join(lines) + f"\n\nMean ± sd over seeds {', '.join(map(str, args.seeds))}. "
            + report.ceiling_sentence(first) + "\n\n" + "\n".join(table))
    return text, results, intervals


def differences(results: dict) -> dict:
    """cross_attention's conditional mean minus every other mode's and ridge's: {rival: difference and 95% interval}."""
    _, arrays, _ = results["cross_attention"][0]
    ours = np.stack([a["conditional_mean"] for _, a, _ in results["cross_attention"]])
    rivals = {mode: np.stack([a["conditional_mean"] for _, a, _ in runs])
              for mode, runs in results.items() if mode != "cross_attention"}
    rivals["ridge"] = arrays["ridge"]
    return {name: bootstrap.corr_difference_interval(ours, theirs, arrays["real"], arrays["times"])
            for name, theirs in rivals.items()}


def samplers(root: Path) -> tuple[str, dict]:
    """DDIM with the default steps against DDPM's 1000 on the bundled model, one sample per image, one seed."""
    rows, scores = [], {}
    for sampler in ("ddim", "ddpm"):
        result = pipeline.evaluate("bundled", root, samples_per_image=1, sampler=sampler, ridge=False,
                                   progress=False)
        scores[sampler] = result["readouts"]["single"]
        rows.append((f"{sampler.upper()} {result['num_inference_steps']}, 1 sample "
                     f"({result['seconds']['sampling']:.0f} s)", scores[sampler]))
    return report.score_table(rows), scores


def goals(results: dict, intervals: dict, sampler_scores: dict | None) -> list[str]:
    """Issue 12's goals (:func:`goal_checks`), one line each: met or MISSED, the value, the target and the margin."""
    return [f"- {'met' if met else 'MISSED'}: {text}: {value:.3f} (target {target:g}, margin {value - target:+.3f})"
            f"{'; ' + detail if detail else ''}"
            for text, value, target, detail, met in goal_checks(results, intervals, sampler_scores)]


def goal_checks(results: dict, intervals: dict, sampler_scores: dict | None) -> list[tuple]:
    """Issue 12's goals on the cross-attention model (means over seeds), each with its value and margin.

    The conditional mean within 10% of the noise ceiling and above ridge beyond the luck of the test images
    (the lower end of the 95% interval of the difference above 0), near-perfect centred 2-way
    identification, single samples as dispersed as real single trials on every channel and hard to tell
    from them (C2ST), and harder to tell than the ridge-plus-Gaussian baseline's; DDIM's default steps nearly
    as good as DDPM's 1000 where the samplers were compared. Returns (what, value, target, detail, met) each.
    """
    runs = [result for result, _, _ in results["cross_attention"]]
    corr = np.mean([r["model"]["corr_across_images"] for r in runs])
    ceiling = runs[0]["noise_ceiling"]
    single = [r["single_trial"]["model"] for r in runs]
    c2st = np.mean([s["c2st_accuracy"] for s in single])
    baseline_c2st = runs[0]["single_trial"]["generative_baseline"]["c2st_accuracy"]
    # (what, value, target, detail, strict): strict goals ("above", "below") are missed by a tie.
    checks = [("corr. across images >= 0.9 x noise ceiling", corr / ceiling, 0.9, f"{corr:.3f} / {ceiling:.3f}", False),
              ("above ridge: lower end of the 95% interval of the difference > 0", intervals["ridge"]["low"], 0.0,
               f"difference {intervals['ridge']['difference']:+.3f}", True),
              ("centred 2-way identification >= 0.95",
               np.mean([r["model"]["identification_2way"] for r in runs]), 0.95, "", False),
              ("dispersion ratio >= 0.9 on every channel", min(s["dispersion_ratio_min"] for s in single), 0.9, "",
               False),
              ("dispersion ratio <= 1.1 on every channel (margin negated)",
               -max(s["dispersion_ratio_max"] for s in single), -1.1, "", False),
              ("C2ST accuracy <= 0.60 (margin negated)", -c2st, -0.60, f"accuracy {c2st:.3f}", False),
              ("C2ST below the ridge + Gaussian baseline's (margin negated)", -c2st, -baseline_c2st,
               f"{c2st:.3f} vs {baseline_c2st:.3f}", True)]
    if sampler_scores:
        ddim, ddpm = (sampler_scores[s]["corr_across_images"] for s in ("ddim", "ddpm"))
        steps = pipeline.SamplingSettings().num_inference_steps
        checks.append((f"DDIM {steps} keeps >= 0.98 of DDPM 1000's corr. across images", ddim / ddpm, 0.98,
                       f"{ddim:.3f} / {ddpm:.3f}", False))
    return [(text, value, target, detail, value > target or (value == target and not strict))
            for text, value, target, detail, strict in checks]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run (default: all)")
    parser.add_argument("--steps", type=int, default=400, help="training steps per mode (ablation)")
    parser.add_argument("--width", type=int, default=32, help="U-Net base channels (ablation)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples-per-image", type=int, default=4, help="K, DDIM samples per test image")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="(ablation, seeds) training seeds")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="(ablation) conditioning modes")
    parser.add_argument("--modality", choices=("eeg", "meg"), default="eeg",
                        help="the synthetic world (meg: the recipe, ablation and subjects parts only)")
    parser.add_argument("--held-out", type=int, nargs="+", default=None,
                        help="(subjects) the subjects left out in turn (default: every subject)")
    parser.add_argument("--runs", default="runs/quality", help="where the ablation's training runs go")
    parser.add_argument("--recipes", nargs="+", default=["0:mean", "0.5:mean", "0:single", "0.5:single"],
                        help="(recipe) HIGH_NOISE_FRACTION:TRIALS pairs to compare on the validation split")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1) // 2),
                        help="training runs at once (recipe, ablation), one torch thread each (default: half the cores)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny world, 20 steps, width 16")
    args = parser.parse_args(argv)
    if args.modality == "meg" and set(args.parts) - {"recipe", "ablation", "subjects"}:
        parser.error("--modality meg runs the recipe, ablation and subjects parts only (the other parts are about "
                     "the EEG world and its bundled model): add --parts ablation")
    if "cross_attention" not in args.modes:
        parser.error("--modes must include cross_attention: every comparison is against it")
    preset = "tiny" if args.quick else "small"
    if args.quick:
        args.steps, args.width, args.batch_size, args.samples_per_image = 20, 16, 16, 2
    root = synthetic.ensure_dataset(None, args.modality, preset, subjects=[1])
    began, load = time.perf_counter(), os.getloadavg()
    print(f"# Quality on the synthetic `{preset}` {args.modality.upper()} world, "
          f"{'every subject' if args.parts == ['subjects'] else 'subject 1'}\n")
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
    if "recipe" in args.parts:
        print(f"## The training recipe, on the validation split: width {args.width}, {args.steps} steps of batch "
              f"{args.batch_size}, cross-attention, K = {args.samples_per_image}\n\n" + recipe_choice(root, args) + "\n")
    if "ablation" in args.parts:
        table, results, intervals = ablation(root, args)
        used = recipe("cross_attention", root, args)
        print(f"## Conditioning modes: width {args.width}, {args.steps} steps of batch {args.batch_size}, "
              f"high-noise fraction {used.high_noise_fraction:g}, trials {used.trials!r}, {used.prediction_type}, "
              f"K = {args.samples_per_image}\n\n" + table + "\n\nGoals:\n")
        print("\n".join(goals(results, intervals, sampler_scores)))
    if "subjects" in args.parts:
        table, counted = subjects_part(args, goal_checks)
        print(f"## Every subject, within and across subjects: width {args.width}, {args.steps} steps of batch "
              f"{args.batch_size}, K = {args.samples_per_image}\n\n{table}\n\nGoals, subject by subject:\n\n{counted}")
    if "seeds" in args.parts:
        section, results, intervals = seeds_part(args, differences)
        print(section + "\n\nGoals:\n\n" + "\n".join(goals(results, intervals, None)))
    print(f"\nLoad average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}; "
          f"whole run {time.perf_counter() - began:.0f} s.")


if __name__ == "__main__":
    main()
