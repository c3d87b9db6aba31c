"""What a THINGS file must satisfy before it becomes a ``BrainData``: the checks the loaders share.

Each refuses data that would otherwise load silently wrong: complex values cast
to float, times in milliseconds (recorded as a 0.1 Hz sampling rate), a CSV whose
rows no longer follow the epochs they describe, NaN values; and each names the
file. ``loaders.py`` reads the files and calls them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .arrays import sampling_rate

MIN_SFREQ = 10.0  # Hz: below this, times were given in milliseconds (a 100 Hz epoch in ms reads as 0.1 Hz)


def uneven_folders(image_paths: list[Path]) -> str:
    """Which concept folders hold fewer or more images than most do: where an image went missing."""
    counts: dict[Path, int] = {}
    for image in image_paths:
        counts[image.parent] = counts.get(image.parent, 0) + 1
    usual = max(set(counts.values()), key=list(counts.values()).count, default=0)
    odd = [f"{folder} ({n} images, most have {usual})" for folder, n in counts.items() if n != usual]
    return f"; check {', '.join(odd[:3])}" if odd else ""


def real(values: np.ndarray, where: str) -> np.ndarray:
    """Refuse complex or non-numeric values, which a cast to float would silently truncate."""
    if np.iscomplexobj(values) or not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{where} holds {values.dtype} values; expected real numbers (float)")
    return values


def sampling_rate_in_seconds(times: np.ndarray, where: str) -> float:
    """The sampling rate of ``times``, refusing milliseconds: no M/EEG recording is sampled below 10 Hz."""
    sfreq = sampling_rate(times, where)
    if sfreq < MIN_SFREQ:
        raise ValueError(f"{where} give a sampling rate of {sfreq:g} Hz; times must be in seconds, and these look "
                         f"like milliseconds ({times[0]:g} to {times[-1]:g}): divide them by 1000")
    return sfreq


def check_same_order(epochs, table, csv: Path, fif: Path) -> None:
    """Cross-check the CSV's rows with what the epochs file says about its own trials, where it says it.

    The image per row comes from the CSV alone, so a shuffled CSV would pair every signal with another image. The
    epochs' metadata (the same columns, as the THINGS-data pipeline and our synthetic writer store them) or their
    event codes (named after the trial types) must agree with it row by row.
    """
    if epochs.metadata is not None and "image_path" in epochs.metadata.columns:
        theirs, mine, what = epochs.metadata["image_path"].astype(str).str.strip().to_numpy(), table["image_path"], \
            "image_path"
    elif set(table["trial_type"]) <= set(epochs.event_id):
        theirs, mine, what = epochs.events[:, 2], table["trial_type"].map(epochs.event_id), "trial type"
    else:
        return
    differ = np.flatnonzero(np.asarray(mine) != np.asarray(theirs))
    if differ.size:
        raise ValueError(f"{csv} does not follow the order of the epochs in {fif}: {differ.size} rows name another "
                         f"{what} than the epoch they describe (first: data row {differ[0] + 1}); use the CSV "
                         "written with these epochs")


def check_finite(signals: np.ndarray, path: Path) -> None:
    bad = signals.size - np.count_nonzero(np.isfinite(signals))
    if bad:
        raise ValueError(f"{path}: {bad} of {signals.size} values are NaN or Inf; "
                         f"the file is damaged, download or write it again")
