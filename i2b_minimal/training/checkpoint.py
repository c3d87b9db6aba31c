"""Training checkpoints that survive a crash: safetensors and JSON, written all at once or not at all.

A checkpoint is one folder, ``<run>/checkpoints/step-00000200/``:

* ``model.safetensors`` and ``ema.safetensors``: the raw and the averaged weights;
* ``optimizer.safetensors``: AdamW's moments and step counts;
* ``rng.safetensors``: the random states that live in tensors (torch CPU and CUDA,
  numpy's Mersenne Twister keys, and any extra counters the caller hands in);
* ``state.json``: everything else (the step, the run's config, the optimiser's
  hyper-parameters, the learning-rate scheduler, Python's random state, the loss
  history) and the SHA-256 of every ``.safetensors`` file beside it.

No pickle anywhere: safetensors holds only tensors and JSON only plain values, so
loading a checkpoint can never run code, and every state PyTorch and NumPy keep
splits cleanly into those two kinds.

Crash safety. The folder is written under a hidden temporary name, every file is
fsynced, and only then is it renamed to ``step-XXXXXXXX`` (a rename is atomic on
POSIX file systems). A run killed mid-write leaves a hidden temporary folder that
:func:`latest_checkpoint` ignores and the next save removes; the previous
checkpoint stays untouched until a newer one is complete. Loading checks every
file against its SHA-256, so a truncated or bit-flipped file is named in a clear
error instead of resuming from damaged weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "state.json"
PREFIX = "step-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or made for other data."""


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """The complete checkpoints under ``root``, oldest first (hidden temporary folders are skipped)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def save_checkpoint(root: str | os.PathLike, step: int, tensors: dict[str, dict[str, torch.Tensor]],
                    state: dict, keep: int = 2) -> Path:
    """Write ``tensors`` (one safetensors file per group) and ``state`` as ``root/step-XXXXXXXX``.

    Then delete all but the newest ``keep`` checkpoints; ``keep=0`` keeps every one (a negative ``keep`` is refused
    before anything is written: it would delete the checkpoint just made).
    """
    if keep < 0:
        raise ValueError(f"keep={keep}: keep a number of checkpoints >= 1, or 0 to keep every one")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{PREFIX}*"):  # left behind by a run killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    final = root / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        digests = {}
        for group, group_tensors in tensors.items():
            path = tmp / f"{group}.safetensors"
            save_file({k: v.detach().to("cpu").contiguous() for k, v in group_tensors.items()}, path)
            fsync_path(path)
            digests[path.name] = sha256_file(path)
        with open(tmp / STATE_FILE, "w") as handle:
            json.dump({**state, "step": step, "files": digests}, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        publish_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep] if keep else []:
        shutil.rmtree(old)
    return final


def publish_folder(tmp: Path, final: Path) -> None:
    """Rename the complete folder ``tmp`` to ``final``; an existing ``final`` is swapped out, then removed."""
    if final.exists():
        old = final.parent / f".{final.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    fsync_path(final.parent)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Read a checkpoint folder, checking every file; raise :class:`CheckpointError` naming the bad file."""
    path = Path(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(_damaged(state_file, "is missing, so the checkpoint is incomplete"))
    try:
        state = json.loads(state_file.read_text())
        digests = state["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(_damaged(state_file, f"is truncated or corrupt ({error})")) from error
    tensors = {}
    for name, digest in digests.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(_damaged(file, "is missing"))
        if sha256_file(file) != digest:
            raise CheckpointError(_damaged(file, "is truncated or corrupt (its SHA-256 differs from the one in state.json)"))
        tensors[file.name.removesuffix(".safetensors")] = load_file(file)
    return tensors, state


def _damaged(file: Path, what: str) -> str:
    folder = file.parent
    others = [p for p in list_checkpoints(folder.parent) if p != folder]
    way_out = (f"the earlier checkpoint {others[-1]} is intact: delete {folder} to resume from it"
               if others else f"delete {folder} and train from the start")
    return f"checkpoint file {file} {what}; {way_out}"


# ----------------------------------------------------------------------------- a training run's state


def save_training_state(root, step: int, model, ema_weights: dict, optimizer, scheduler, state: dict,
                        extra_tensors: dict | None = None, keep: int = 2) -> Path:
    """Checkpoint everything a resumed run needs: weights, EMA, AdamW, LR scheduler, every RNG, plus ``state``.

    ``extra_tensors`` holds the caller's own counters (kept in ``rng.safetensors`` as ``extra.<name>``).
    """
    optimizer_tensors, optimizer_info = _optimizer_to_safe(optimizer.state_dict())
    rng_tensors, rng_info = _capture_rng()
    rng_tensors.update({f"extra.{k}": v for k, v in (extra_tensors or {}).items()})
    tensors = {"model": model.state_dict(), "ema": ema_weights, "optimizer": optimizer_tensors, "rng": rng_tensors}
    state = {**state, "optimizer": optimizer_info, "scheduler": scheduler.state_dict(), "rng": rng_info}
    return save_checkpoint(root, step, tensors, state, keep=keep)


def restore_training_state(saved: tuple[dict, dict], model, optimizer, scheduler, source) -> tuple[dict, dict, dict]:
    """Load what :func:`save_training_state` wrote (``saved`` from :func:`load_checkpoint`) into the live objects.

    Sets the global RNGs too. Returns ``(ema_weights, extra_tensors, state)``.
    """
    tensors, state = saved
    try:
        model.load_state_dict(tensors["model"])
        optimizer.load_state_dict(_optimizer_from_safe(tensors["optimizer"], state["optimizer"]))
    except (RuntimeError, KeyError, ValueError) as error:
        raise CheckpointError(f"{source} does not fit the model this config builds: {error}") from error
    scheduler.load_state_dict(state["scheduler"])
    rng = dict(tensors["rng"])
    extra = {k.removeprefix("extra."): rng.pop(k) for k in list(rng) if k.startswith("extra.")}
    _restore_rng(rng, state["rng"])
    return tensors["ema"], extra, state


# ----------------------------------------------------------------------------- optimiser state


def _optimizer_to_safe(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (``state.<param>.<name>``) and JSON (hyper-parameters)."""
    tensors, plain = {}, {}
    for param, entries in state_dict["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{param}.{name}"] = value
            else:
                plain.setdefault(str(param), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "plain_state": plain}


def _optimizer_from_safe(tensors: dict[str, torch.Tensor], info: dict) -> dict:
    """Inverse of :func:`_optimizer_to_safe`: a dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, param, name = key.split(".", 2)
        state.setdefault(int(param), {})[name] = value
    for param, entries in info["plain_state"].items():
        state.setdefault(int(param), {}).update(entries)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in info["param_groups"]]
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------- random states


def _capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """The global random states of Python, NumPy and torch (CPU and every CUDA device)."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = cuda_state
    plain = {"python": [version, list(python_state), gauss], "numpy": [kind, int(position), int(has_gauss), float(cached)]}
    return tensors, plain


def _restore_rng(tensors: dict[str, torch.Tensor], plain: dict) -> None:
    version, python_state, gauss = plain["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, position, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[f"cuda.{i}"] for i in range(sum(k.startswith("cuda.") for k in tensors))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])


# ----------------------------------------------------------------------------- files


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()  # as download.py checks its files


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
