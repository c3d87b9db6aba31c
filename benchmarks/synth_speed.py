"""How long does the synthetic world take to write, and how much disk does it use? Prints tables.

1. Time and disk of each preset (``tiny``, ``small``) for EEG and MEG, for every
   subject, as ``i2b data synth --modality M --preset P`` writes it. Each preset is
   written with subjects 1 and 2; the shared images are timed on their own, and
   the rest, halved, is the cost of one subject (simulation, files, ground truth).
   The columns for all subjects add the images and 10 (EEG) or 4 (MEG) subjects.
   The ``full`` preset is not run (THINGS-MEG's 27048 epochs of 271 x 281 alone
   take 16.5 GB of memory per subject): its row is an **estimate**, the ``small``
   preset's measured cost per image and per epoch times the number of images and
   epochs of ``full``. ``--measure-full-eeg`` also writes one full EEG subject
   (about 1.1 GB of disk) and measures it.
2. The noise ceiling of subject 1's test split: the split-half estimate from the
   data alone (``metrics.noise_ceiling_summary``) and the true one, from the
   saved noiseless responses (``metrics.true_noise_ceiling``), both averaged over
   channels and the samples after image onset. Beside them, the structure of the
   noise in the files (the test trials minus the saved truth): the correlation of
   an epoch's first and last samples (a periodic synthesis would make it large)
   and the mean absolute correlation between channels (MVNN whitens the EEG).

Run: ``python benchmarks/synth_speed.py`` (timings depend on the machine's load:
the load average is printed with them).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from i2b_minimal import data, metrics, synthetic
from i2b_minimal.world import markers


def folder_bytes(root: Path, parts=None) -> int:
    """Bytes of the files under ``root`` (only those whose relative path starts with one of ``parts``)."""
    files = (p for p in root.rglob("*") if p.is_file())
    if parts is not None:
        files = (p for p in files if p.relative_to(root).as_posix().startswith(tuple(parts)))
    return sum(p.stat().st_size for p in files)


def subject_files(modality: str, subject: int) -> tuple[str, ...]:
    """Relative path prefixes of one subject's files (data and ground truth)."""
    if modality == "eeg":
        return (f"preprocessed_data/sub-{subject:02d}/", f"ground_truth/sub-{subject:02d}/")
    return (f"derivatives/preprocessed/preprocessed_P{subject}-epo", f"sourcedata/sample_attributes_P{subject}.csv",
            f"ground_truth/sub-{subject:02d}/")


def counts(modality: str, preset: str) -> tuple[int, int]:
    """(images drawn, epochs per subject) of a preset."""
    spec = synthetic.PRESETS[modality][preset]
    if modality == "eeg":
        images = spec["train_concepts"] * spec["images_per_concept"] + spec["test_concepts"]
        return images, spec["train_concepts"] * spec["images_per_concept"] * spec["train_reps"] + \
            spec["test_concepts"] * spec["test_reps"]
    images = spec["concepts"] * spec["sessions"] + spec["test_concepts"] + spec["catch"]
    return images, spec["sessions"] * (spec["concepts"] + spec["test_concepts"] + spec["catch"])


def measure(scratch: Path, modality: str, preset: str, subjects=(1, 2)) -> dict:
    """Shared (image) and per-subject time and bytes of one preset, and the total for all its subjects.

    The image drawing is timed on its own (``synthetic._write_images``, wrapped), so that the split
    does not rest on the difference of two runs, which the load of other processes would blur.
    """
    root = scratch / f"{modality}-{preset}"
    drawing = []
    draw = synthetic._write_images

    def timed_draw(*args, **kwargs):
        start = time.perf_counter()
        draw(*args, **kwargs)
        drawing.append(time.perf_counter() - start)

    start = time.perf_counter()
    with mock.patch.object(synthetic, "_write_images", timed_draw):
        synthetic.make_dataset(root, modality=modality, preset=preset, subjects=list(subjects), progress=False)
    total = time.perf_counter() - start
    shared_s, per_subject_s = sum(drawing), (total - sum(drawing)) / len(subjects)
    subject_bytes = folder_bytes(root, subject_files(modality, 1))
    shared_bytes = folder_bytes(root) - sum(folder_bytes(root, subject_files(modality, s)) for s in subjects)
    images, epochs = counts(modality, preset)
    n = synthetic.N_SUBJECTS[modality]
    return dict(modality=modality, preset=preset, images=images, epochs=epochs, one_subject_s=shared_s + per_subject_s,
                shared_s=shared_s, per_subject_s=per_subject_s, shared_bytes=shared_bytes, subject_bytes=subject_bytes,
                subjects=n, total_s=shared_s + n * per_subject_s, total_bytes=shared_bytes + n * subject_bytes,
                estimate=False, root=root)


def extrapolate(small: dict, preset: str = "full") -> dict:
    """The cost of ``preset`` from ``small``'s measured cost per image (shared) and per epoch (subjects)."""
    images, epochs = counts(small["modality"], preset)
    image_scale, epoch_scale = images / small["images"], epochs / small["epochs"]
    n = small["subjects"]
    shared_s, per_subject_s = small["shared_s"] * image_scale, small["per_subject_s"] * epoch_scale
    shared_bytes, subject_bytes = small["shared_bytes"] * image_scale, small["subject_bytes"] * epoch_scale
    return dict(modality=small["modality"], preset=preset, images=images, epochs=epochs,
                one_subject_s=shared_s + per_subject_s, shared_s=shared_s, per_subject_s=per_subject_s,
                shared_bytes=shared_bytes, subject_bytes=subject_bytes, subjects=n,
                total_s=shared_s + n * per_subject_s, total_bytes=shared_bytes + n * subject_bytes, estimate=True)


def ceilings(row: dict) -> dict:
    """Split-half and true noise ceilings of subject 1's test split, and the structure of its noise."""
    test = data.load(row["modality"], row["root"], subject=1, split="test")
    truth = synthetic.load_ground_truth(row["root"], 1, test.image_paths)
    return dict(modality=row["modality"], preset=row["preset"], shape=test.signals.shape,
                split_half=metrics.noise_ceiling_summary(test.signals, test.times, progress=False),
                true=metrics.post_stimulus_mean(metrics.true_noise_ceiling(truth, test.signals), test.times),
                **noise_structure(test.signals - truth[:, None]))


def noise_structure(noise: np.ndarray) -> dict:
    """Mean over channels of corr(first sample, last sample), and mean |corr| between channels, of (..., C, T) noise."""
    trials = noise.reshape(-1, *noise.shape[-2:]).astype(np.float64)
    first_last = np.mean([np.corrcoef(trials[:, c, 0], trials[:, c, -1])[0, 1] for c in range(trials.shape[1])])
    between = np.corrcoef(trials.transpose(1, 0, 2).reshape(trials.shape[1], -1))
    return dict(first_last=first_last, between_channels=np.abs(between[np.triu_indices_from(between, 1)]).mean())


def _seconds(value) -> str:
    return f"{value:,.1f}"


def _size(n_bytes) -> str:
    for unit, factor in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:,.1f} {unit}"
    return f"{n_bytes} B"


def print_tables(rows: list[dict], noise: list[dict]) -> None:
    print("| modality | preset | images | epochs / subject | subject 1 alone (s) | images (s) | per subject (s) "
          "| all subjects (s) | images on disk | per subject on disk | all subjects on disk |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = f"{r['preset']} (**estimate**)" if r["estimate"] else r["preset"]
        print(f"| {r['modality'].upper()} | {label} | {r['images']:,} | {r['epochs']:,} | {_seconds(r['one_subject_s'])} "
              f"| {_seconds(r['shared_s'])} | {_seconds(r['per_subject_s'])} | {_seconds(r['total_s'])} "
              f"({r['subjects']}) | {_size(r['shared_bytes'])} | {_size(r['subject_bytes'])} | {_size(r['total_bytes'])} |")
    print()
    print("| modality | preset | test signals (images, reps, C, T) | split-half noise ceiling | true noise ceiling "
          "| noise: corr. first/last sample | noise: mean abs. corr. between channels |")
    print("|---|---|---|---|---|---|---|")
    for c in noise:
        print(f"| {c['modality'].upper()} | {c['preset']} | {c['shape']} | {c['split_half']:.3f} | {c['true']:.3f} "
              f"| {c['first_last']:.3f} | {c['between_channels']:.3f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measure-full-eeg", action="store_true", help="also write and time one full EEG subject")
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    rows, noise = [], []
    with tempfile.TemporaryDirectory(prefix="synth-speed-") as scratch:
        for modality in ("eeg", "meg"):
            for preset in ("tiny", "small"):
                rows.append(measure(Path(scratch), modality, preset))
                noise.append(ceilings(rows[-1]))
                shutil.rmtree(rows[-1]["root"])  # keep the disk use of the run down
            rows.append(extrapolate(rows[-1]))
        if args.measure_full_eeg:
            rows.append(measure(Path(scratch), "eeg", "full", subjects=(1,)))
    print(f"synth_speed: {started:%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
          f"load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}, "
          f"simulation version {markers.GENERATOR_VERSION}\n")
    print_tables(rows, noise)


if __name__ == "__main__":
    main()
