"""i2b-minimal: generate EEG and MEG signals from images.

A frozen CLIP image encoder conditions a 1D U-Net denoising diffusion model
through cross-attention, following Xu, Long & Zhang, "Image-to-Brain Signal
Generation for Visual Prosthesis with CLIP Guided Multimodal Diffusion Models"
(arXiv 2509.00787).

Each module holds one idea; read them in the order data flows:
``synthetic`` / ``data`` -> ``clip`` -> ``attention`` -> ``unet`` ->
``diffusion`` -> ``train`` -> ``metrics`` / ``baselines`` -> ``viz``.
Modules are imported lazily so that ``import i2b_minimal`` stays fast.
"""

import importlib
import importlib.util

__version__ = "0.1.0"



def __getattr__(name):
    # Lazy submodule import: `import i2b_minimal as i2b; i2b.data` works without
    # paying for torch, transformers and MNE until a module is actually used.
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'i2b_minimal' has no attribute {name!r}")
