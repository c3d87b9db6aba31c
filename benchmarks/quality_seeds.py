"""``benchmarks/quality.py --parts seeds``: the bundled model's own recipe, trained once per seed of ``--seeds``.

The recipe is the bundled EEG model's training config, read from its ``meta.json``, so seed 0 retrains the
bundled model itself (a run is exactly repeatable on the same machine, ``training/train.py``). Each seed's
model of all subjects is scored on subject 1's test set with ``SamplingSettings``' defaults, as its model card
is; ridge and the ridge-plus-Gaussian baseline are fitted once. Issue 12's goals (``quality.goal_checks``) are
read on the mean over seeds, with the 95% paired-bootstrap interval of the lead over ridge taken on the mean of
the seeds' conditional means (``quality.differences``). About 45 minutes per training run with a core of its own
(12800 steps at 4.8 steps/s), longer beside other runs (the bundled model's took 6467 s beside three others).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from i2b_minimal import pipeline, report, synthetic, train
from i2b_minimal.evaluation import bootstrap
from quality_runs import run_all, spread


def bundled_recipe(args) -> train.TrainConfig:
    """The bundled model's training config, as its ``meta.json`` records it (``--quick``: its fast mode, one
    subject)."""
    recorded = train.TrainConfig(**json.loads((pipeline.BUNDLED_MODEL / "meta.json").read_text())["config"])
    return dataclasses.replace(recorded.fast_mode(), subjects=(1,)) if args.quick else recorded


def seeds_part(args, differences) -> tuple[str, dict, dict]:
    """The section of every seed (heading, table, baselines), the results ({"cross_attention": [(result, arrays,
    seconds)]}) and the intervals of ``differences`` (quality.py's), for ``quality.goals``."""
    recipe = bundled_recipe(args)
    root = synthetic.ensure_dataset(None, "eeg", "tiny" if args.quick else "small", subjects=list(recipe.subjects))
    configs = [dataclasses.replace(recipe, data_root=str(root), seed=seed,
                                   output_dir=str(Path(args.runs) / f"bundled-recipe-seed{seed}"))
               for seed in args.seeds]
    done = run_all([(config, root, "test", args.samples_per_image, i == 0, {}) for i, config in enumerate(configs)],
                   args.jobs)
    first, arrays = done[0][0], done[0][1]
    ceiling = first["noise_ceiling"]
    lines = ["| seed | conditional mean | / noise ceiling | minus ridge [95% interval] | 2-way (cond. mean) | "
             "dispersion (min-max) | covariance distance | C2ST | trained (s) |", "|---" * 9 + "|"]
    for config, (result, seed_arrays, seconds) in zip(configs, done):
        corr, single = result["model"]["corr_across_images"], result["single_trial"]["model"]
        lead = bootstrap.corr_difference_interval(seed_arrays["conditional_mean"], arrays["ridge"], arrays["real"],
                                                  arrays["times"])
        lines.append(f"| {config.seed} | {corr:.3f} | {corr / ceiling:.2f} | {lead['difference']:+.3f} "
                     f"[{lead['low']:+.3f}, {lead['high']:+.3f}] | {result['model']['identification_2way']:.3f} | "
                     f"{single['dispersion_ratio_min']:.2f}-{single['dispersion_ratio_max']:.2f} | "
                     f"{single['covariance_distance']:.3f} | {single['c2st_accuracy']:.3f} | {seconds:.0f} |")
    results = {"cross_attention": done}
    intervals = differences(results)

    corrs = [r["model"]["corr_across_images"] for r, _, _ in done]
    lead = intervals["ridge"]
    lines.append(f"| mean of the seeds | {spread(corrs)} | {np.mean(corrs) / ceiling:.2f} | {lead['difference']:+.3f} "
                 f"[{lead['low']:+.3f}, {lead['high']:+.3f}] (seeds' mean) | "
                 f"{spread([r['model']['identification_2way'] for r, _, _ in done])} | | | "
                 f"{spread([r['single_trial']['model']['c2st_accuracy'] for r, _, _ in done])} | |")
    baseline = first["single_trial"]["generative_baseline"]
    note = (f"Ridge {first['ridge']['corr_across_images']:.3f} (2-way {first['ridge']['identification_2way']:.3f}); "
            f"the ridge-plus-Gaussian baseline's dispersion {baseline['dispersion_ratio_min']:.2f}-"
            f"{baseline['dispersion_ratio_max']:.2f}, C2ST {baseline['c2st_accuracy']:.3f}. "
            f"Sampler: DDIM {first['num_inference_steps']} steps, eta {first['eta']:g}, K = {first['samples_per_image']}. "
            + report.ceiling_sentence(first))
    heading = (f"## The bundled recipe, seeds {', '.join(map(str, args.seeds))}: {recipe.steps} steps of batch "
               f"{recipe.batch_size} on subjects {', '.join(map(str, recipe.subjects))}, width "
               f"{recipe.base_channels}, high-noise fraction {recipe.high_noise_fraction:g}, trials {recipe.trials!r}")
    return heading + "\n\n" + "\n".join(lines) + "\n\n" + note, results, intervals
