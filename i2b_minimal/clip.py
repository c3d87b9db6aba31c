"""The frozen CLIP image encoder that conditions the diffusion model, with feature caching.

The paper (arXiv 2509.00787) turns each picture into tokens with a frozen,
pretrained CLIP vision transformer (Radford et al. 2021; ViT-L/14,
``openai/clip-vit-large-patch14``). :class:`ImageEncoder` wraps
``transformers``' ``CLIPVisionModelWithProjection`` and returns two views of
an image:

- ``tokens``: the class token and one token per patch (``last_hidden_state``,
  shape (B, L, D)), which the U-Net's cross-attention reads;
- ``pooled``: the projected class token (``image_embeds``, shape (B, P)), the
  single vector that the ``concat`` and ``add`` conditioning modes use.

It loads a hub id, a local folder, or ``"tiny"``: the CLIP the project trained
on its own offline world (``tiny_clip.py``), shipped in ``assets/tiny-clip``.
Nothing touches the network unless a hub id is not cached yet; then a short
socket check runs first, so that an offline machine fails in seconds with a
message that says what to do, instead of retrying for half a minute.

:func:`encode_dataset` encodes a dataset's images once and caches the features
beside the data, keyed on everything that could change them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import socket
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from .runtime import atomic_path, autocast, best_device

TINY_CLIP_DIR = Path(__file__).parent / "assets" / "tiny-clip"
CONNECT_TIMEOUT_S = 2.5
# Token grids above this many values per image are cached in float16: ViT-L/14's
# 257 x 1024 tokens take 1 MB per image in float32, 17 GB for THINGS-EEG2's training set.
FLOAT16_CACHE_ABOVE = 2**16


def _image_processor_class():
    try:  # transformers >= 5 names the PIL backend explicitly; its default backend needs torchvision.
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:  # transformers 4: CLIPImageProcessor is the PIL/numpy one already.
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}
    return bool(constants.HF_HUB_OFFLINE) or flag


def _hub_reachable(timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Can a TCP connection to the hub (or the HTTPS proxy) open within ``timeout`` seconds?"""
    from huggingface_hub import constants

    url = urllib.parse.urlsplit(urllib.request.getproxies().get("https") or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_source(name_or_path: str) -> tuple[str, bool]:
    """``(what from_pretrained gets, whether it is a local folder)`` for a name, folder or hub id."""
    if name_or_path == "tiny":
        return str(TINY_CLIP_DIR), True
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(
            f"{name_or_path!r} is not a folder with a CLIP model (config.json, model.safetensors, "
            "preprocessor_config.json); give a folder, a hub id such as openai/clip-vit-large-patch14, or 'tiny'"
        )
    return name_or_path, False


@contextlib.contextmanager
def _hub_offline():
    """Switch huggingface_hub to offline mode for a block.

    ``local_files_only`` alone is not enough: huggingface_hub 2.x builds a
    user-agent header even for a cache lookup, and that fetches a registry from
    the hub once a day (3 s timeout). Offline mode turns every such call off.
    """
    from huggingface_hub import constants

    saved, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _from_pretrained(cls, source: str, local: bool, **kwargs):
    """Load ``source``: from disk with no network call when possible, else online after a quick check."""
    try:
        with _hub_offline():
            return cls.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError as not_cached:
        if local:
            raise
        way_out = (f"run once with internet access to download and cache {source!r} "
                   "(it then loads offline), or use the bundled ImageEncoder('tiny')")
        if _offline():
            raise ConnectionError(f"{source!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 "
                                  f"forbids downloading it: {way_out}") from not_cached
        if not _hub_reachable():
            raise ConnectionError(f"{source!r} is not in the Hugging Face cache and the hub is unreachable "
                                  f"(no connection within {CONNECT_TIMEOUT_S} s): {way_out}") from not_cached
    return cls.from_pretrained(source, **kwargs)


def load_rgb(image) -> Image.Image:
    """A PIL image or a path -> an 8-bit RGB image.

    16-bit grey levels ("I;16*", "I") are scaled to 8 bits (divided by 257,
    so that 65535 maps to 255); transparent images (RGBA, LA, palette with
    transparency) are composited on white, the background of the THINGS
    photographs, rather than having their hidden colour revealed.
    """
    if not isinstance(image, Image.Image):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        try:
            with Image.open(path) as opened:
                opened.load()  # decode now, so that a truncated file fails here, naming itself
                image = ImageOps.exif_transpose(opened)
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"cannot read image {path}: {error}") from error
    if image.mode.startswith("I;16") or image.mode == "I":
        grey = np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257.0
        return Image.fromarray(np.round(grey).astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


class ImageEncoder:
    """A frozen CLIP vision tower: images -> (tokens (B, L, D), pooled (B, P)), float32 on the CPU."""

    def __init__(self, name_or_path: str = "tiny", device=None, batch_size: int = 64, progress: bool = True,
                 cache_dir=None):
        import transformers
        from transformers import CLIPVisionModelWithProjection

        source, local = resolve_source(str(name_or_path))
        self.name = str(name_or_path)
        self.device = best_device(device)
        self.batch_size = batch_size
        self.progress = progress
        hub = {} if cache_dir is None else {"cache_dir": str(cache_dir)}  # the hub cache to use (default: HF_HOME's)
        self.processor = _from_pretrained(_image_processor_class(), source, local, **hub)
        # Hub CLIP checkpoints hold both towers; the text tower's weights are expected leftovers,
        # so the load report is silenced and missing vision weights are checked here instead.
        verbosity, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
        transformers.logging.set_verbosity_error()
        if not progress:
            transformers.logging.disable_progress_bar()
        try:
            model, info = _from_pretrained(CLIPVisionModelWithProjection, source, local, output_loading_info=True, **hub)
        finally:
            transformers.logging.set_verbosity(verbosity)
            if bars:
                transformers.logging.enable_progress_bar()
        if info["missing_keys"]:
            raise ValueError(f"{self.name!r} lacks vision weights {sorted(info['missing_keys'])[:5]}...; "
                             "is it a CLIP checkpoint?")
        self.model = model.float().eval().requires_grad_(False).to(self.device)
        config = self.model.config
        self.token_dim = config.hidden_size
        self.embed_dim = config.projection_dim
        self.num_tokens = (config.image_size // config.patch_size) ** 2 + 1

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of every weight (names and bytes): equal if and only if the encoder computes the same thing."""
        digest = hashlib.sha256()
        for key, tensor in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    @property
    def preprocessing(self) -> dict:
        """The image processor's settings (resize, crop, normalisation): part of the cache key."""
        return json.loads(self.processor.to_json_string())

    def encode(self, images, progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """PIL images or paths (one or a sequence) -> (tokens (B, L, D), pooled (B, P))."""
        if isinstance(images, (str, os.PathLike, Image.Image)):
            images = [images]
        images = list(images)
        show = self.progress if progress is None else progress
        tokens, pooled = [], []
        batches = range(0, len(images), self.batch_size)
        for start in tqdm(batches, desc=f"CLIP {self.name}", unit="batch", disable=not show or len(batches) < 2):
            rgb = [load_rgb(image) for image in images[start:start + self.batch_size]]
            pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.inference_mode(), autocast(self.device):
                out = self.model(pixel_values=pixels)
            tokens.append(out.last_hidden_state.float().cpu())
            pooled.append(out.image_embeds.float().cpu())
        if not tokens:
            raise ValueError("no images to encode")
        return torch.cat(tokens), torch.cat(pooled)

    def __repr__(self) -> str:
        return (f"ImageEncoder({self.name!r}, tokens {self.num_tokens} x {self.token_dim}, "
                f"pooled {self.embed_dim}, device {self.device})")


def _image_list(image_paths, cache_dir: Path) -> list[list]:
    """Each image as [path relative to the data root, size in bytes, mtime in ns]: a change recomputes."""
    entries = []
    for path in map(Path, image_paths):
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        stat = path.stat()
        entries.append([os.path.relpath(path.resolve(), cache_dir.resolve().parent), stat.st_size, stat.st_mtime_ns])
    return entries


def encode_dataset(encoder: ImageEncoder, image_paths, cache_dir, progress: bool = True):
    """Encode ``image_paths`` once, caching (tokens, pooled) in ``cache_dir`` (e.g. ``<root>/features``).

    The cache file's name is a hash of the encoder's name, its weights'
    fingerprint, its preprocessing and the image list (paths relative to the
    data root, in order, with file sizes and modification times), so a change
    to any of them recomputes; the file also stores that key, checked on
    reading. Large token grids are stored in float16 (``FLOAT16_CACHE_ABOVE``);
    features are always returned as float32.
    """
    from safetensors.torch import load_file, save_file

    cache_dir = Path(cache_dir)
    key = json.dumps({"encoder": encoder.name, "weights_sha256": encoder.fingerprint,
                      "preprocessing": encoder.preprocessing,
                      "images": _image_list(image_paths, cache_dir)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(encoder.name).name)
    path = cache_dir / f"clip-{slug}-{digest}.safetensors"
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            stored_key = handle.metadata().get("key")
        if stored_key == key:
            features = load_file(str(path))
            return features["tokens"].float(), features["pooled"].float()
    tokens, pooled = encoder.encode(list(image_paths), progress=progress)
    dtype = torch.float16 if encoder.num_tokens * encoder.token_dim > FLOAT16_CACHE_ABOVE else torch.float32
    tokens = tokens.to(dtype).contiguous()
    with atomic_path(path) as tmp:
        save_file({"tokens": tokens, "pooled": pooled.contiguous()}, str(tmp), metadata={"key": key})
    return tokens.float(), pooled  # what a later call reads back, to the bit
