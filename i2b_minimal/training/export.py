"""A trained model on disk: one folder that sampling can trust.

``train.train`` ends by writing the EMA weights here, ``<run>/model/``:

* ``config.json`` and ``model.safetensors``: ``UNet1D.save_pretrained`` (huggingface_hub's
  ``PyTorchModelHubMixin``), so ``UNet1D.from_pretrained`` reads them, or the Hub hosts them;
* ``meta.json``: what sampling needs beyond the network: the data it was trained on
  (dataset, channel names, times, sampling rate), the per-channel normalisation that
  maps model units back to the data's units (:func:`to_data_units`), the image
  encoder (name and a fingerprint of its weights), the conditioning mode and width,
  the noise schedule, the training config, and the SHA-256 of the weights.

* ``integrity.json``: the SHA-256 of the three files above. A changed ``num_heads`` in
  ``config.json`` or a changed normalisation in ``meta.json`` changes the outputs as
  surely as changed weights, so all three are covered (:func:`write_integrity`).

The folder is written under a temporary name and renamed when complete.
:func:`load_trained` checks every file against its SHA-256 and the model
against the data, encoder and conditioning it is asked to serve, and says what
differs instead of generating nonsense.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from i2b_minimal.method.hardware import best_device
META_FILE = "meta.json"
INTEGRITY_FILE = "integrity.json"
COVERED_FILES = ("model.safetensors", "config.json", META_FILE)  # everything that decides the outputs

def export_model(model: torch.nn.Module, folder: str | os.PathLike, meta: dict) -> Path:
    """Write ``model`` with ``save_pretrained`` and ``meta`` (data, normalisation, encoder, schedule) as one folder, atomically."""
    folder = Path(folder)
    broken = [name for name, value in model.state_dict().items() if value.is_floating_point()
              and not bool(torch.isfinite(value).all())]
    if broken:  # a NaN model must never pass as a result
        raise ValueError(f"not exporting to {folder}: {len(broken)} weight tensors hold NaN or Inf values "
                         f"(e.g. {broken[0]}); the training diverged, lower the learning rate and train again")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        meta = {**meta, "weights_sha256": checkpoint.sha256_file(tmp / "model.safetensors")}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        write_integrity(tmp)
        for file in tmp.iterdir():
            checkpoint.fsync_path(file)
        checkpoint.publish_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_trained(path: str | os.PathLike, data=None, encoder=None, conditioning: str | None = None, device=None):
    """Load an exported model: ``(model in eval mode, NoiseSchedule, meta)``.

    Give the ``data`` (a ``BrainData``), ``encoder`` (an ``ImageEncoder``) or
    ``conditioning`` you mean to use it with, and a model made for something
    else is refused with a message saying what differs.
    """
    from i2b_minimal.method import diffusion, unet
    path = Path(path)
    meta, weights = read_meta(path), path / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing; export the model again")
    if checkpoint.sha256_file(weights) != meta["weights_sha256"]:
        raise ValueError(f"{weights} is truncated or corrupt: its SHA-256 differs from the one in {path / META_FILE}; "
                         "export the model again (or train it again)")
    check_integrity(path)
    check_compatible(meta, describe(data, encoder, conditioning or meta["conditioning"]), source=path)
    try:
        # The hub mixin prints "Loading weights from local directory" on stdout, into every table and notebook
        # that loads a model; the files were verified above, so there is nothing to say.
        with contextlib.redirect_stdout(io.StringIO()):
            model = unet.UNet1D.from_pretrained(path)
    except Exception as error:  # safetensors and the hub mixin raise many kinds; the file is what matters
        raise ValueError(f"{weights} could not be loaded as a UNet1D ({error})") from error
    schedule = diffusion.NoiseSchedule(**meta["schedule"])
    return model.to(best_device(device)).eval(), schedule, meta


def write_integrity(folder: Path) -> None:
    """Record the SHA-256 of every file that decides a model's outputs in ``folder/integrity.json``."""
    record = {name: checkpoint.sha256_file(folder / name) for name in COVERED_FILES}
    (folder / INTEGRITY_FILE).write_text(json.dumps({"sha256": record}, indent=1))


def check_integrity(folder: Path) -> None:
    """Refuse a model folder whose ``config.json``, ``meta.json`` or weights differ from what export wrote."""
    record_file = folder / INTEGRITY_FILE
    try:
        record = json.loads(record_file.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{record_file} is missing or corrupt ({error}), so {folder} cannot be checked; export "
                         "the model again") from None
    for name in COVERED_FILES:
        if not (folder / name).is_file() or checkpoint.sha256_file(folder / name) != record.get(name):
            raise ValueError(f"{folder / name} was changed after export (its SHA-256 differs from {record_file}); "
                             f"a changed {name} changes the signals silently: export the model again")


def read_meta(path: str | os.PathLike) -> dict:
    """The ``meta.json`` of an exported model folder, without loading the weights; says what to do when it is bad."""
    meta_file = Path(path) / META_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(f"no trained model at {path}: {meta_file} is missing; `i2b train --output-dir RUN` "
                                f"exports one to RUN/model")
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError as error:
        raise ValueError(f"{meta_file} is truncated or corrupt ({error}); export the model again") from error
    if not isinstance(meta, dict) or "weights_sha256" not in meta:
        raise ValueError(f"{meta_file} is truncated or corrupt (no weights_sha256); export the model again")
    return meta


def describe(data=None, encoder=None, conditioning: str | None = None) -> dict:
    """What a model must fit, in the terms :func:`check_compatible` compares."""
    found: dict = {}
    if data is not None:
        found.update(dataset=data.dataset, n_channels=data.signals.shape[2], n_times=data.signals.shape[3],
                     ch_names=list(data.ch_names))
    if conditioning is not None:
        found["conditioning"] = conditioning
    if encoder is not None and conditioning not in (None, "none"):
        found["encoder"] = {"name": encoder.name, "fingerprint": encoder.fingerprint}
        found["cond_dim"] = encoder.token_dim if conditioning == "cross_attention" else encoder.embed_dim
    return found


def check_compatible(trained: dict, found: dict, source) -> None:
    """Raise ``ValueError`` when a model (or checkpoint) described by ``trained`` cannot serve ``found``."""
    if "n_channels" in found and (found["n_channels"], found["n_times"]) != (trained["n_channels"], trained["n_times"]):
        raise ValueError(f"{source} was trained on {trained['dataset']} signals of {trained['n_channels']} channels x "
                         f"{trained['n_times']} samples, but the data ({found['dataset']}) has {found['n_channels']} x "
                         f"{found['n_times']}; use a model trained on this data, or train one with `i2b train`")
    if "ch_names" in found and found["ch_names"] != trained["ch_names"]:
        raise ValueError(f"{source} was trained on channels {trained['ch_names'][:4]}..., but the data has "
                         f"{found['ch_names'][:4]}... (names or order differ); the model's channels are fixed")
    if "conditioning" in found and found["conditioning"] != trained["conditioning"]:
        raise ValueError(f"{source} was trained with conditioning={trained['conditioning']!r}, but "
                         f"{found['conditioning']!r} was asked for; use that mode or a model trained with this one")
    if trained["conditioning"] == "none" or "encoder" not in found:
        return
    mine, theirs = trained["encoder"], found["encoder"]
    if found["cond_dim"] != trained["cond_dim"]:
        raise ValueError(f"{source} expects {trained['cond_dim']}-wide features from the image encoder "
                         f"{mine['name']!r}, but {theirs['name']!r} gives {found['cond_dim']}; use {mine['name']!r}")
    if theirs["fingerprint"] != mine["fingerprint"]:
        raise ValueError(f"{source} was trained on features of the image encoder {mine['name']!r} (weights "
                         f"{mine['fingerprint'][:12]}), but the encoder given is {theirs['name']!r} (weights "
                         f"{theirs['fingerprint'][:12]}); features of another encoder mean nothing to it")


def trained_subjects(meta: dict) -> list[int]:
    """The subjects a model was trained on, in the order of its subject table (a model of one names one)."""
    return [int(s) for s in meta.get("subjects", [meta["subject"]])]


def to_data_units(x, meta: dict):
    """Model-unit signals (..., C, T), tensor or array, back to the data's units: x * std + mean per channel."""
    norm = meta["normalisation"]
    mean, std = np.asarray(norm["mean"])[:, None], np.asarray(norm["std"])[:, None]
    if torch.is_tensor(x):
        return x * torch.as_tensor(std, dtype=x.dtype, device=x.device) + torch.as_tensor(mean, dtype=x.dtype,
                                                                                         device=x.device)
    return (x * std + mean).astype(np.asarray(x).dtype, copy=False)
