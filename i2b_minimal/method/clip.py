"""The frozen CLIP image encoder that conditions the diffusion model, the image side of the conditioning.

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
on its own offline world (``world/tiny_clip``), shipped in ``assets/tiny-clip``
(``pretrained.py`` says where weights come from).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from .hardware import autocast, best_device
from .pretrained import TINY_CLIP_DIR, from_pretrained, resolve_source  # noqa: F401 -- TINY_CLIP_DIR: public


def image_processor_class():
    """CLIP's image preprocessing class, in its PIL form (the project installs no torchvision)."""
    try:  # transformers >= 5 names the PIL backend explicitly; its default backend needs torchvision.
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:  # transformers 4: CLIPImageProcessor is the PIL/numpy one already.
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


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
        self.processor = from_pretrained(image_processor_class(), source, local, **hub)
        # Hub CLIP checkpoints hold both towers; the text tower's weights are expected leftovers,
        # so the load report is silenced and missing vision weights are checked here instead.
        verbosity, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
        transformers.logging.set_verbosity_error()
        if not progress:
            transformers.logging.disable_progress_bar()
        try:
            model, info = from_pretrained(CLIPVisionModelWithProjection, source, local, output_loading_info=True, **hub)
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
