"""The CLIP feature cache: a dataset's images are encoded once and stored beside the data.

CLIP stays frozen (arXiv 2509.00787), so its features never change during
training: computing them once per (encoder, preprocessing, image list) is
enough. The cache is keyed on everything that could change them.

A dataset on a read-only disk (a shared mount, a course's copy) cannot hold the
cache, so it then goes to a user cache folder (:func:`user_cache_dir`), under the
same file name, in a folder of its own per data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from i2b_minimal.runtime import atomic_path

# Token grids above this many values per image are cached in float16: ViT-L/14's
# 257 x 1024 tokens take 1 MB per image in float32, 17 GB for THINGS-EEG2's training set.
FLOAT16_CACHE_ABOVE = 2**16


def _image_list(image_paths, cache_dir: Path) -> list[list]:
    """Each image as [path relative to the data root, size in bytes, mtime in ns]: a change recomputes."""
    entries = []
    for path in map(Path, image_paths):
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        stat = path.stat()
        entries.append([os.path.relpath(path.resolve(), cache_dir.resolve().parent), stat.st_size, stat.st_mtime_ns])
    return entries


def user_cache_dir() -> Path:
    """``$I2B_CACHE_DIR``, else ``$XDG_CACHE_HOME/i2b-minimal``, else ``~/.cache/i2b-minimal``."""
    if os.environ.get("I2B_CACHE_DIR"):
        return Path(os.environ["I2B_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "i2b-minimal"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _fallback_dir(cache_dir: Path) -> Path:
    """Where the features of ``cache_dir``'s data go when it cannot be written: one folder per data folder."""
    place = hashlib.sha256(str(cache_dir.resolve()).encode()).hexdigest()[:12]
    return user_cache_dir() / "features" / f"{cache_dir.resolve().parent.name}-{place}"


def _read(path: Path, key: str):
    """(tokens, pooled) from a cache file written under ``key``, or None."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        if handle.metadata().get("key") != key:
            return None
    features = load_file(str(path))
    return features["tokens"].float(), features["pooled"].float()


def encode_dataset(encoder, image_paths, cache_dir, progress: bool = True):
    """Encode ``image_paths`` once, caching (tokens, pooled) in ``cache_dir`` (e.g. ``<root>/features``).

    The cache file's name is a hash of the encoder's name, its weights'
    fingerprint, its preprocessing and the image list (paths relative to the
    data root, in order, with file sizes and modification times), so a change
    to any of them recomputes; the file also stores that key, checked on
    reading. Large token grids are stored in float16 (``FLOAT16_CACHE_ABOVE``);
    features are always returned as float32. When ``cache_dir`` cannot be written, the
    cache lives in :func:`user_cache_dir` instead.
    """
    from safetensors.torch import save_file

    cache_dir = Path(cache_dir)
    key = json.dumps({"encoder": encoder.name, "weights_sha256": encoder.fingerprint,
                      "preprocessing": encoder.preprocessing,
                      "images": _image_list(image_paths, cache_dir)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(encoder.name).name)
    name = f"clip-{slug}-{digest}.safetensors"
    for folder in (cache_dir, _fallback_dir(cache_dir)):
        cached = _read(folder / name, key)
        if cached is not None:
            return cached
    path = (cache_dir if _writable(cache_dir) else _fallback_dir(cache_dir)) / name
    tokens, pooled = encoder.encode(list(image_paths), progress=progress)
    dtype = torch.float16 if encoder.num_tokens * encoder.token_dim > FLOAT16_CACHE_ABOVE else torch.float32
    tokens = tokens.to(dtype).contiguous()
    with atomic_path(path) as tmp:
        save_file({"tokens": tokens, "pooled": pooled.contiguous()}, str(tmp), metadata={"key": key})
    return tokens.float(), pooled  # what a later call reads back, to the bit
