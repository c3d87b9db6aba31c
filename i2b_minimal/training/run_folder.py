"""One run per output folder, checked before anything in it is touched.

A typo in ``--data-root`` with ``--overwrite`` used to delete the checkpoints and
then fail on the missing data; a read-only folder failed at the first checkpoint,
losing the steps before it; two runs in one folder overwrote each other's
checkpoints; a resume on other data continued silently. So a run first checks
that it can write its folder (:func:`check_writable`), then holds the folder's lock
for as long as it runs (:func:`exclusive`), and a resume compares the data's
:func:`data_fingerprint` and normalisation with the checkpoint's
(:func:`check_same_data`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from i2b_minimal.datasets import things_format

LOCK_FILE = ".i2b-run.lock"
FINGERPRINT_BYTES = 1 << 20  # read from each end of every data file: a full hash would take minutes on THINGS-MEG


class RunFolderBusyError(RuntimeError):
    """Another run holds the output folder's lock."""


def check_writable(output_dir: Path) -> None:
    """Make ``output_dir`` and write a file in it now, so a folder we cannot write fails before the first step."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as error:  # PermissionError, a read-only file system, a file in the way
        raise PermissionError(f"cannot write to the output folder {output_dir} ({error.strerror or error}); "
                              "choose one you can write with --output-dir") from None


@contextlib.contextmanager
def exclusive(output_dir: Path, main: bool = True):
    """Hold ``output_dir``'s lock while the block runs; a second run gets :class:`RunFolderBusyError` at once.

    Only the main process locks (the others of a multi-process run share its folder). The lock is released when the
    run ends or its process dies, so a crashed run never leaves the folder locked.
    """
    if not main:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(output_dir / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunFolderBusyError(f"another run is training into {output_dir} (it holds {output_dir / LOCK_FILE}); "
                                 "wait for it to finish, or choose another --output-dir") from None
    try:
        yield
    finally:
        lock.release()


def training_files(modality: str, root, subject: int) -> list[Path]:
    """The data files a run's training split is read from (the images are fingerprinted by the feature cache)."""
    if modality == "eeg":
        return [things_format.eeg2_data_path(root, subject, "train")]
    epochs, csv = things_format.meg_paths(root, subject)
    return [*sorted(epochs.parent.glob(f"{epochs.stem}*.fif")), csv]  # MNE splits large files into -epo-1.fif, ...


def data_fingerprint(files: list[Path], image_paths: list[Path], root) -> str:
    """SHA-256 of each data file's name, size, first and last MiB, and of the image list relative to ``root``."""
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
            handle.seek(max(size - FINGERPRINT_BYTES, 0))
            digest.update(handle.read(FINGERPRINT_BYTES))
    for image in image_paths:
        digest.update(os.path.relpath(image, root).encode())
    return digest.hexdigest()


def check_same_data(saved: dict, found: dict, source) -> None:
    """Refuse to resume the checkpoint whose ``info`` is ``saved`` on data whose ``info`` is ``found``."""
    mine = saved.get("data_fingerprint")
    if mine is not None and mine != found["data_fingerprint"]:
        raise ValueError(f"{source} was trained on other data files than those in --data-root (their fingerprints "
                         f"differ: {mine[:12]} vs {found['data_fingerprint'][:12]}); resume on the same data, or "
                         "start again in another --output-dir")
    for stat in ("mean", "std"):
        if saved["normalisation"][stat] != found["normalisation"][stat]:
            raise ValueError(f"{source} standardised the data with other per-channel {stat}s than this data gives; "
                             "the data changed since the checkpoint: resume on the same data, or start again in "
                             "another --output-dir")
