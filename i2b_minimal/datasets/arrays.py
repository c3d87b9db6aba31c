"""Signals as checked arrays: numpy or torch in, a finite float array out; seconds in, Hz out.

The metrics, the figures and the MNE wrappers take signals as numpy arrays or
torch tensors through :func:`as_float_array`, which names the array when it
holds a NaN (one NaN would otherwise turn every average into NaN). The loaders
and the MNE wrappers read the sampling rate off a time axis with
:func:`sampling_rate`, which refuses an uneven one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_float_array(x, name: str, dims: Sequence[str] | None = None) -> np.ndarray:
    """``x`` (numpy array or torch tensor, any device or dtype, bf16 included) as a floating numpy array, checked.

    ``dims`` names the expected axes, e.g. ``("n_images", "C", "T")``; the
    array must have that many. NaN or infinity anywhere is an error. Float32 and
    float64 stay as they are; other dtypes (bf16, integers) become float64.
    """
    if hasattr(x, "detach"):  # a torch tensor; duck-typed so numpy users need no torch
        x = x.detach().cpu()
        x = x.numpy() if x.dtype.is_floating_point and x.itemsize >= 4 else x.double().numpy()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if dims is not None and x.ndim != len(dims):
        raise ValueError(f"{name} must have shape ({', '.join(dims)}), got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or infinite values (first at index "
            f"{tuple(int(i) for i in np.argwhere(bad)[0])}); remove or repair them first"
        )
    return x


def sampling_rate(times, where: str = "times") -> float:
    """The sampling rate (Hz) of ``times`` (s), which must be evenly spaced; ``where`` names them in errors."""
    times = np.asarray(times, dtype=np.float64)
    steps = np.diff(times)
    if times.ndim != 1 or steps.size == 0 or not np.all(steps > 0) or not np.allclose(steps, steps.mean(), rtol=1e-3):
        raise ValueError(f"{where} must be at least two increasing, evenly spaced values in seconds "
                         "(one sampling rate)")
    return round(1.0 / steps.mean(), 6)
