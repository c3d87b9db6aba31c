"""The ground floor: where data lives, the fast-mode switch, atomic file writes.

Small shared plumbing, kept in one place so that every module makes the same
choice the same way.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fast_mode() -> bool:
    """True when ``I2B_FAST=1``: notebooks and the test suite shrink data and steps."""
    return os.environ.get("I2B_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}


def data_dir() -> Path:
    """Where datasets live: ``$I2B_DATA_DIR``, else the repository's ``data/``, else ``./data``.

    The repository is found by walking up from the working directory to the folder that
    holds ``pyproject.toml`` and ``i2b_minimal/``, so a notebook run from ``notebooks/``
    and a command run from the root share one data folder. Outside a checkout (a pip
    install, Colab) it is ``data/`` in the working directory.
    """
    override = os.environ.get("I2B_DATA_DIR", "").strip()
    if override:
        return Path(override).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "i2b_minimal").is_dir():
            return folder / "data"
    return here / "data"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Write ``path`` all at once or not at all.

    The data goes to a temporary file in the same folder, which is flushed,
    fsynced and renamed over ``path`` only when the block succeeds. A crash
    mid-write leaves the previous file intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Like :func:`atomic_write`, for libraries that want a file name, not a handle.

    Yields a temporary path in the same folder; it is renamed over ``path``
    when the block succeeds and removed when it fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
