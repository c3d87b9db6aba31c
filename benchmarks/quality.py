"""How good are the generated signals? One table on the synthetic test set, where the truth is known.

One run, on the ``small`` synthetic EEG world (subject 1; 1600 training images
x 4 repetitions, 100 test images x 40 repetitions):

1. trains one model per conditioning mode (``cross_attention``, ``concat``,
   ``add``, ``none``) with the same recipe (width, steps, batch, learning rate,
   seed), on the bundled tiny CLIP's features;
2. scores each on the test images with DDIM (50 steps), averaging
   ``--samples-per-image`` samples per image (a diffusion sample is one
   plausible response, noise included; the mean of several estimates the
   expected response that encoding models are scored on);
3. scores ridge regression on the same CLIP features (``baselines.py``), the
   split-half noise ceiling (Gifford et al. 2022) and the noiseless truth of
   the simulation (the score of a perfect model);
4. compares the samplers on the cross-attention model with one sample per image
   and the same seed: DDPM with all 1000 steps against DDIM with 50, with their
   sampling times;
5. prints one markdown table and checks the project's quality goals (:func:`goals` lists them).

Every score is ``metrics.evaluate``'s, through ``pipeline.evaluate`` (what
``i2b evaluate`` runs). Training runs go to ``runs/quality/<mode>``.

Run: ``python benchmarks/quality.py`` (``--steps``, ``--samples-per-image``; ``--quick`` for a smoke run
on the tiny world). Results: ``benchmarks/results/quality.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from i2b_minimal import pipeline, report, synthetic, train, unet

MODES = unet.CONDITIONING_MODES
# The report's scores, with the ERP latency error in ms (the table prints it that way, see cell()).
COLUMNS = tuple((key, "ERP latency error (ms)" if key == "erp_latency_error" else title) for key, title in report.SCORES)


def recipe(mode: str, root: Path, args) -> train.TrainConfig:
    """The one training recipe every conditioning mode gets."""
    return train.TrainConfig(data_root=str(root), subject=1, encoder="tiny", conditioning=mode,
                             base_channels=args.width, steps=args.steps, batch_size=args.batch_size, lr=1e-3,
                             warmup_steps=min(100, args.steps // 10), checkpoint_every=args.steps,
                             prediction_type="v_prediction",
                             output_dir=str(Path(args.runs) / mode), seed=0)


def cell(scores: dict, key: str) -> str:
    value = scores.get(key)
    if value is None:
        return "–"
    if key == "erp_latency_error":
        return f"{1000 * value:.1f}"
    return f"{value:.4f}" if key == "mse" else f"{value:.3f}"


def table(rows: list[tuple[str, dict, str]]) -> str:
    lines = ["| | " + " | ".join(title for _, title in COLUMNS) + " | time |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for name, scores, seconds in rows:
        lines.append(f"| {name} | " + " | ".join(cell(scores, key) for key, _ in COLUMNS) + f" | {seconds} |")
    return "\n".join(lines)


def goals(by_mode: dict, ridge: dict, ceiling: float, ddim: dict, ddpm: dict) -> list[str]:
    """The quality goals, each with the measured value and the margin (positive: met by, negative: missed by).

    The targets: the cross-attention model within 10% of the noise ceiling, near-perfect pairwise
    identification, ahead of the other conditioning modes and of ridge, and DDIM's 50 steps nearly as
    good as DDPM's 1000.
    """
    cross = by_mode["cross_attention"]
    corr = cross["corr_across_images"]
    rivals = {name: by_mode[name]["corr_across_images"] for name in ("concat", "add")}
    rivals["ridge"] = ridge["corr_across_images"]
    checks = [
        ("corr. across images >= 0.9 x noise ceiling", corr / ceiling, 0.9, f"{corr:.3f} / {ceiling:.3f}"),
        ("2-way identification >= 0.95", cross["identification_2way"], 0.95, ""),
        *((f"cross_attention beats {name} (corr. across images)", corr - value, 0.0, f"{corr:.3f} vs {value:.3f}")
          for name, value in rivals.items()),
        ("DDIM 50 keeps >= 0.98 of DDPM 1000's corr. across images",
         ddim["corr_across_images"] / ddpm["corr_across_images"], 0.98,
         f"{ddim['corr_across_images']:.3f} / {ddpm['corr_across_images']:.3f}"),
    ]
    return [f"- {'met' if value >= target else 'MISSED'}: {text}: {value:.3f} (target {target:g}, "
            f"margin {value - target:+.3f}){'; ' + detail if detail else ''}" for text, value, target, detail in checks]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps per mode")
    parser.add_argument("--width", type=int, default=32, help="U-Net base channels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples-per-image", type=int, default=4, help="DDIM samples averaged per test image")
    parser.add_argument("--runs", default="runs/quality", help="where the training runs go")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny world, 20 steps, width 16")
    args = parser.parse_args(argv)
    preset = "tiny" if args.quick else "small"
    if args.quick:
        args.steps, args.width, args.batch_size, args.samples_per_image = 20, 16, 16, 2
    root = synthetic.ensure_dataset(None, "eeg", preset, subjects=[1])
    began = time.perf_counter()
    load = os.getloadavg()

    by_mode, rows, models = {}, [], {}
    k = args.samples_per_image
    for mode in MODES:
        start = time.perf_counter()
        result = train.train(recipe(mode, root, args), overwrite=True)
        trained_s = time.perf_counter() - start
        models[mode] = pipeline.load_model(result.model_dir)
        scores = pipeline.evaluate(models[mode], root, samples_per_image=k, num_inference_steps=50,
                                   ridge=mode == "cross_attention")
        by_mode[mode] = scores["model"]
        rows.append((f"{mode}, DDIM 50, mean of {k}", scores["model"],
                     f"train {trained_s:.0f} s, sample {scores['seconds']['sampling']:.0f} s"))
        if mode == "cross_attention":
            reference = scores
    ridge, ceiling = reference["ridge"], reference["noise_ceiling"]
    rows.append(("ridge (same CLIP features)", ridge, f"{reference['seconds']['ridge']:.0f} s"))
    rows.append(("noise ceiling (split halves)", {"corr_across_images": ceiling}, ""))
    if "true_noise_ceiling" in reference:
        rows.append(("true noise ceiling (noiseless truth)", reference["ground_truth"], ""))

    samplers = {}
    for sampler in ("ddim", "ddpm"):  # DDPM always walks all 1000 training steps
        scores = pipeline.evaluate(models["cross_attention"], root, samples_per_image=1, sampler=sampler,
                                   num_inference_steps=50, ridge=False)
        samplers[sampler] = scores["model"]
        rows.append((f"cross_attention, {sampler.upper()} {scores['num_inference_steps']}, 1 sample",
                     scores["model"], f"sample {scores['seconds']['sampling']:.0f} s"))

    print()
    print(f"## Quality on the synthetic `{preset}` EEG world, subject 1 ({reference['n_test_images']} test images x "
          f"{reference['n_test_repetitions']} repetitions, averaged)")
    print()
    print(f"Recipe per mode: U-Net width {args.width}, {args.steps} steps of batch {args.batch_size}, AdamW lr 1e-3, "
          f"v-prediction, seed 0, tiny-CLIP features; diffusion rows average {k} DDIM samples per image unless "
          "they say 1 sample. Correlation across images and identification use t >= 0 s.")
    print()
    print(table(rows))
    print()
    print(f"Noise ceiling {ceiling:.3f}; true ceiling {reference.get('true_noise_ceiling', float('nan')):.3f}. "
          f"Load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}; "
          f"whole run {time.perf_counter() - began:.0f} s.")
    print()
    print("Goals:")
    print("\n".join(goals(by_mode, ridge, ceiling, samplers["ddim"], samplers["ddpm"])))


if __name__ == "__main__":
    main()
