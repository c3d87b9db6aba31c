"""Do the bundled models' subjects differ as the real ones do? Notebook 09's measures on the ``small`` worlds.

For each modality: the bundled model's conditional mean (16 draws) of every test image for every subject;
the similarity matrix over subjects of the grand-average patterns (80-300 ms), real and generated, and the
correlation of their entries above the diagonal (``evaluation/topography_similarity.py``; issue 15's goal:
>= 0.8 on EEG); the variation of each subject's topography across images at its N1: recorded (the average of the repetitions,
noise included), the simulation's noiseless truth, and generated.

Run: ``python benchmarks/subject_similarity.py``. Results: ``benchmarks/results/subject_similarity.md``.
"""

from __future__ import annotations

import datetime
import os
import time

import numpy as np

from i2b_minimal import erp, pipeline, synthetic
from i2b_minimal.datasets import loaders
from i2b_minimal.evaluation import topography_similarity as similarity

MODELS = {"eeg": "bundled", "meg": "bundled-meg"}
DATASETS = {"eeg": "things-eeg2", "meg": "things-meg"}


def measure(modality: str) -> str:
    subjects = list(range(1, synthetic.N_SUBJECTS[modality] + 1))
    root = synthetic.ensure_dataset(None, modality, "small", subjects=subjects)
    test = {s: loaders.load(DATASETS[modality], root, subject=s, split="test") for s in subjects}
    model = pipeline.load_model(MODELS[modality], progress=False)
    paths, times = test[1].image_paths, test[1].times
    cond = model.image_condition(paths, progress=False)
    generated = {s: model.conditional_mean(cond, len(paths), subject=s) for s in subjects}
    real = {s: test[s].signals for s in subjects}
    _, real_matrix = similarity.between_subject_similarity(real, times)
    _, generated_matrix = similarity.between_subject_similarity(generated, times)
    agreement = similarity.similarity_agreement(real_matrix, generated_matrix)
    upper = np.triu_indices(len(subjects), k=1)
    reduce = "gfp" if modality == "meg" else "mean"
    lines = [f"## {modality.upper()}: `{MODELS[modality]}`, subjects {subjects[0]}-{subjects[-1]}, "
             f"{len(paths)} test images\n",
             f"Similarity matrices over subjects: the generated one correlates **{agreement:.3f}** with the real one "
             f"over its {len(upper[0])} pairs (real pairs {real_matrix[upper].min():.2f} to "
             f"{real_matrix[upper].max():.2f}, generated {generated_matrix[upper].min():.2f} to "
             f"{generated_matrix[upper].max():.2f}).\n",
             "| subject | generated vs real pattern, same subject | N1 latency (ms) | variation across images at N1: "
             "recorded | noiseless truth | generated |", "|---|---|---|---|---|---|"]
    for s in subjects:
        own = np.corrcoef(similarity.grand_average_pattern(real[s], times),
                          similarity.grand_average_pattern(generated[s], times))[0, 1]
        n1 = erp.erp_peaks(test[s].mean_over_repetitions(), times, reduce=reduce)["N1"]["latency"]
        truth = synthetic.load_ground_truth(root, s, paths)
        variation = [similarity.variation_across_images(x, times, n1) for x in (real[s], truth, generated[s])]
        lines.append(f"| {s} | {own:.3f} | {1000 * n1:.0f} | " + " | ".join(f"{v:.3f}" for v in variation) + " |")
    return "\n".join(lines)


def main() -> None:
    began = time.perf_counter()
    print("# Between-subject similarity, real and generated\n")
    print(f"`python benchmarks/subject_similarity.py`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
          f"UTC, load average {os.getloadavg()[0]:.2f}.\n")
    for modality in MODELS:
        print(measure(modality) + "\n")
    print(f"Whole run {time.perf_counter() - began:.0f} s.")


if __name__ == "__main__":
    main()
