"""``benchmarks/quality.py --parts subjects``: every subject of a synthetic world, within and across subjects.

As arXiv 2509.00787 reports them. **Within-subject**: one model of all the subjects (a learned subject
embedding, ``method/subjects.py``), trained with the quickstart's recipe at ``--steps``, scored on each
subject's own test set with its own row. **Cross-subject**: for each held-out subject, a model trained
the same way on the other subjects only, scored on the held-out subject's test set with the mean of its
subject rows (leave one subject out). The drop is within minus cross, per subject, with a 95% paired-bootstrap
interval over test images (``evaluation/bootstrap.py``). Ridge and the ridge-plus-Gaussian baseline are fitted
on each scored subject's own training split: within-subject baselines, for the within-subject model and the
cross-subject one alike. Issue 12's goals (``quality.goal_checks``) are counted over the subjects.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from i2b_minimal import pipeline, synthetic, train
from i2b_minimal.evaluation import bootstrap
from quality_runs import recipe, run_all


def train_and_score_subjects(config: train.TrainConfig, root: Path, scored: list[int], samples_per_image: int):
    """Train ``config`` (its ``subjects``), then score each subject of ``scored``: [(result, arrays)], seconds."""
    start = time.perf_counter()
    run = train.train(config, overwrite=True, progress=False)
    trained_s = time.perf_counter() - start
    model = pipeline.load_model(run.model_dir, progress=False)
    out = []
    for subject in scored:
        result, signals = pipeline.evaluate(model, root, subject=subject, samples_per_image=samples_per_image,
                                            **pipeline.QUICKSTART_SAMPLING, progress=False,
                                            return_signals=True)  # the quickstart recipe's sampler
        out.append((result, {"conditional_mean": signals["readouts"]["conditional_mean"], "real": signals["real"],
                             "ridge": signals["ridge"], "times": signals["times"]}))
    return out, trained_s


def subjects_part(args, goal_checks) -> tuple[str, str]:
    """The within- and cross-subject table, and issue 12's ``goal_checks`` (quality.py's) counted over subjects,
    for ``args.modality``."""
    subjects = list(range(1, synthetic.N_SUBJECTS[args.modality] + 1))
    root = synthetic.ensure_dataset(None, args.modality, "tiny" if args.quick else "small", subjects=subjects)
    base = recipe("cross_attention", root, args)
    held_out = args.held_out or subjects

    def config(name, trained):
        return dataclasses.replace(base, subjects=tuple(trained), output_dir=str(Path(args.runs) / name))

    jobs = [(config("all-subjects", subjects), root, subjects, args.samples_per_image)]
    jobs += [(config(f"without-{s:02d}", [t for t in subjects if t != s]), root, [s], args.samples_per_image)
             for s in held_out]
    done = run_all(jobs, args.jobs, train_and_score_subjects)
    within = dict(zip(subjects, done[0][0]))
    cross = {s: scored[0] for s, (scored, _) in zip(held_out, done[1:])}

    lines = ["| subject | within: conditional mean | cross (left out) | within minus cross [95% interval] | "
             "ridge (within) | within minus ridge [95% interval] | noise ceiling | within / ceiling | "
             "2-way (within) | C2ST (within) |", "|---" * 10 + "|"]
    met = {}
    for s in subjects:
        result, arrays = within[s]
        corr, ceiling = result["model"]["corr_across_images"], result["noise_ceiling"]
        over_ridge = bootstrap.corr_difference_interval(arrays["conditional_mean"], arrays["ridge"], arrays["real"],
                                                        arrays["times"])
        drop_text, cross_text = "", ""
        if s in cross:
            other, other_arrays = cross[s]
            drop = bootstrap.corr_difference_interval(arrays["conditional_mean"], other_arrays["conditional_mean"],
                                                      arrays["real"], arrays["times"])
            cross_text = f"{other['model']['corr_across_images']:.3f}"
            drop_text = f"{drop['difference']:+.3f} [{drop['low']:+.3f}, {drop['high']:+.3f}]"
        lines.append(f"| {s} | {corr:.3f} | {cross_text} | {drop_text} | {result['ridge']['corr_across_images']:.3f} | "
                     f"{over_ridge['difference']:+.3f} [{over_ridge['low']:+.3f}, {over_ridge['high']:+.3f}] | "
                     f"{ceiling:.3f} | {corr / ceiling:.2f} | {result['model']['identification_2way']:.3f} | "
                     f"{result['single_trial']['model']['c2st_accuracy']:.2f} |")
        for text, value, target, _, ok in goal_checks({"cross_attention": [(result, arrays, 0)]},
                                                      {"ridge": over_ridge}, None):
            met.setdefault(text, []).append((value, ok))
    means = [np.mean([within[s][0]["model"]["corr_across_images"] for s in subjects])]
    if cross:
        means.append(np.mean([cross[s][0]["model"]["corr_across_images"] for s in cross]))
    lines.append(f"| mean | {means[0]:.3f} | {means[1]:.3f} | | | | | | | |" if cross else
                 f"| mean | {means[0]:.3f} | | | | | | | | |")
    goals = [f"- {text}: met on {sum(ok for _, ok in values)} of {len(values)} subjects (values "
             f"{min(v for v, _ in values):.3f} to {max(v for v, _ in values):.3f})" for text, values in met.items()]
    seconds = [t for _, t in done]
    note = (f"Within: one model of subjects {subjects[0]}-{subjects[-1]}, trained {seconds[0]:.0f} s. Cross: "
            f"{len(cross)} leave-one-out models, {np.mean(seconds[1:]):.0f} s each. Baselines and ceilings: the "
            "scored subject's own.")
    return "\n".join(lines) + "\n\n" + note, "\n".join(goals)
