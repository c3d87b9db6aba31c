"""Where the method runs: CUDA, then Apple MPS, then CPU, with bf16 autocast on a GPU.

The same code runs on all three; only these two choices differ between them.
"""

from __future__ import annotations

import contextlib


def best_device(prefer: str | None = None):
    """CUDA, then Apple MPS, then CPU; ``prefer`` (e.g. ``"cpu"``) overrides."""
    import torch

    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device):
    """bf16 autocast on a GPU; a no-op context on CPU and MPS.

    bf16 keeps fp32's exponent range, so diffusion losses need no loss scaling.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
