"""Figures for brain signals: topographies, ERPs, subject grids, diffusion trajectories, attention maps.

Topographies are drawn by ``mne.viz.plot_topomap`` on the sensor positions of
``sensors.make_info`` (colin27 10-20 for the 17 THINGS-EEG2 electrodes, CTF-275 for
the 271 THINGS-MEG sensors); the rest is plain matplotlib. Every plotting function
returns a matplotlib Figure, so the same call works in a notebook, a script and the
static book. Inputs are numpy arrays or torch tensors; (n, C, T) inputs are averaged
over their leading axes wherever one (C, T) picture is drawn.
"""

from __future__ import annotations

import math
from typing import Mapping

import matplotlib.pyplot as plt
import mne
import numpy as np

from i2b_minimal.datasets.arrays import as_float_array
from i2b_minimal.datasets.sensors import make_info, topomap_sphere

from .erp import ERP_WINDOWS  # so that figures mark exactly the P1/N1/P2 windows the metrics measure

__all__ = [
    "plot_topomap", "plot_topomaps", "compare_topomaps", "plot_subject_grid", "plot_erp",
    "plot_butterfly", "plot_trajectory", "plot_attention",
]

# --------------------------------------------------------------------------- arrays


def _resolve_info(ch_names, ch_type, info) -> mne.Info:
    if info is not None:
        return info
    if ch_names is None:
        raise ValueError("Pass ch_names (with ch_type) or an mne.Info as info=.")
    return make_info(ch_names, ch_type=ch_type)  # sfreq does not matter for a topography


def _average(x, what: str = "signals") -> np.ndarray:
    """(..., C, T) -> (C, T): the mean over images and repetitions."""
    x = as_float_array(x, what)
    if x.ndim < 2:
        raise ValueError(f"{what} must have shape (..., channels, times), got {x.shape}")
    return x.reshape(-1, *x.shape[-2:]).mean(axis=0)


def _sample_index(times: np.ndarray, latency: float) -> int:
    times = np.asarray(times)
    if not times[0] - 1e-9 <= latency <= times[-1] + 1e-9:
        raise ValueError(f"latency {latency} s is outside the epoch [{times[0]:.3f}, {times[-1]:.3f}] s")
    return int(np.argmin(np.abs(times - latency)))


def _symmetric_vlim(arrays, vlim) -> tuple[float, float]:
    # A signed quantity needs a colour scale centred on zero, shared by every panel it is compared with.
    if vlim is not None:
        return tuple(vlim)
    vmax = max(float(np.max(np.abs(a))) for a in arrays) or 1.0
    return (-vmax, vmax)


# --------------------------------------------------------------------------- topographies


def _draw_topomap(values, info, ax, vlim, cmap="RdBu_r", names=False):
    image, _ = mne.viz.plot_topomap(
        values, info, axes=ax, vlim=vlim, cmap=cmap, show=False, contours=4,
        sphere=topomap_sphere(info),
        # Only 17 posterior electrodes: colour the area they cover, not the whole scalp.
        extrapolate="local", names=info.ch_names if names else None,
    )
    return image


def plot_topomap(values, ch_names=None, ch_type=None, *, info=None, ax=None, vlim=None,
                 title=None, cmap="RdBu_r", names=False, colorbar=True) -> plt.Figure:
    """One scalp topography of ``values`` (C,), one value per channel."""
    info = _resolve_info(ch_names, ch_type, info)
    values = as_float_array(values, "values").ravel()
    if values.size != len(info.ch_names):
        raise ValueError(f"values has {values.size} entries but there are {len(info.ch_names)} channels")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(3, 3))
    image = _draw_topomap(values, info, ax, _symmetric_vlim([values], vlim), cmap, names)
    if colorbar:
        fig.colorbar(image, ax=ax, shrink=0.7)
    ax.set_title(title or "")
    return fig


def _topomap_grid(rows, info, vlim, title, cmap="RdBu_r") -> plt.Figure:
    """rows: list of (row_label, [(column_title, values (C,)), ...]), equally long, on one colour scale."""
    n_rows, n_cols = len(rows), len(rows[0][1])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols + 1.2, 1.9 * n_rows + 0.4),
                             squeeze=False, layout="constrained")
    vlim = _symmetric_vlim([v for _, cells in rows for _, v in cells], vlim)
    for r, (row_label, cells) in enumerate(rows):
        for c, (column_title, values) in enumerate(cells):
            image = _draw_topomap(values, info, axes[r, c], vlim, cmap)
            axes[r, c].set_title(column_title, fontsize=9)
        axes[r, 0].set_ylabel(row_label, fontsize=9)
        axes[r, 0].yaxis.set_visible(True)  # MNE hides the axes; keep the row label
        axes[r, 0].set_yticks([])
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def _latency_cells(x, times, latencies):
    return [(f"{1000 * t:.0f} ms", x[:, _sample_index(times, t)]) for t in latencies]


def plot_topomaps(signals, times, ch_names=None, latencies=(0.1, 0.17), ch_type=None, *,
                  info=None, vlim=None, title=None) -> plt.Figure:
    """A row of topographies of ``signals`` (..., C, T) at the given latencies (s)."""
    rows = [("", _latency_cells(_average(signals), times, latencies))]
    return _topomap_grid(rows, _resolve_info(ch_names, ch_type, info), vlim, title)


def compare_topomaps(real, generated, times, ch_names=None, latencies=(0.1, 0.17), ch_type=None, *,
                     info=None, vlim=None, title=None, labels=("real", "generated")) -> plt.Figure:
    """Real (top row) against generated (bottom row) topographies, on one colour scale."""
    pairs = zip(labels, (real, generated))
    rows = [(label, _latency_cells(_average(x, label), times, latencies)) for label, x in pairs]
    return _topomap_grid(rows, _resolve_info(ch_names, ch_type, info), vlim, title)


def plot_subject_grid(per_subject: Mapping[int, object], times, ch_names=None, latency=0.17, ch_type=None, *,
                      generated: Mapping[int, object] | None = None, info=None, vlim=None,
                      title=None) -> plt.Figure:
    """One topography per subject (columns) at one or more latencies (rows), as in the paper's figures.

    ``per_subject`` maps subject number to its signals (..., C, T); ``generated`` (same keys) adds a
    generated row under each real row. One colour scale for all panels, so differences between
    columns are inter-subject variation and differences between paired rows are model error.
    """
    info, subjects = _resolve_info(ch_names, ch_type, info), sorted(per_subject)
    if generated is not None and sorted(generated) != subjects:
        raise ValueError(f"generated has subjects {sorted(generated)}, per_subject has {subjects}")
    sources = [("real", per_subject)] + ([("generated", generated)] if generated is not None else [])
    averaged = {(label, s): _average(src[s], f"{label} sub-{s:02d}") for label, src in sources for s in subjects}
    rows = []
    for t in np.atleast_1d(latency):
        index = _sample_index(times, float(t))
        for label, _ in sources:
            cells = [(f"sub-{s:02d}", averaged[label, s][:, index]) for s in subjects]
            rows.append((f"{label}, {1000 * t:.0f} ms" if generated is not None else f"{1000 * t:.0f} ms", cells))
    return _topomap_grid(rows, info, vlim, title)


# --------------------------------------------------------------------------- time courses


def _mark_components(ax, components):
    for name, (start, stop) in (components or {}).items():
        ax.axvspan(start, stop, color="0.5", alpha=0.12, lw=0)
        ax.text((start + stop) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)


def _channel_indices(ch_names, channels) -> list[int]:
    if channels is None:
        return []
    if ch_names is None:
        raise ValueError("channels= selects by name, so pass ch_names too")
    missing = [c for c in channels if c not in ch_names]
    if missing:
        raise ValueError(f"channels {missing} are not in ch_names {list(ch_names)}")
    return [list(ch_names).index(c) for c in channels]


def plot_erp(real, generated, times, ch_names=None, *, channels=None, components=ERP_WINDOWS, ax=None,
             title=None, ylabel="amplitude", labels=("real", "generated")) -> plt.Figure:
    """The ERP (mean over ``channels``, default all) of real and generated signals (..., C, T).

    With (n, C, T) inputs the band is +- one standard error of the mean across the n images.
    ``generated`` may be None to draw the real ERP alone.
    """
    picks = _channel_indices(ch_names, channels)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3), layout="constrained")
    for label, signals, style in zip(labels, (real, generated), ("-", "--")):
        if signals is None:
            continue
        x = as_float_array(signals, label)
        x = x.reshape(-1, *x.shape[-2:])[:, picks or slice(None)].mean(axis=1)  # (n, T): ROI average per image
        mean = x.mean(axis=0)
        (line,) = ax.plot(times, mean, style, label=label)
        if len(x) > 1:
            sem = x.std(axis=0, ddof=1) / math.sqrt(len(x))
            ax.fill_between(times, mean - sem, mean + sem, color=line.get_color(), alpha=0.2, lw=0)
    _mark_components(ax, components)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="time (s)", ylabel=ylabel, xlim=(times[0], times[-1]))
    ax.set_title(title or (f"ERP over {', '.join(channels)}" if channels else "ERP, all channels"), pad=14)
    ax.legend(fontsize=8)
    return fig


def plot_butterfly(real, generated, times, *, components=ERP_WINDOWS, title=None, ylabel="amplitude",
                   labels=("real", "generated")) -> plt.Figure:
    """Every channel's time course (thin lines) and the global field power (thick), real beside generated.

    Global field power is the standard deviation across channels at each time (Lehmann & Skrandies 1980).
    """
    panels = [(label, _average(s, label)) for label, s in zip(labels, (real, generated)) if s is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, (label, x) in zip(axes[0], panels):
        ax.plot(times, x.T, lw=0.6, alpha=0.7)
        ax.plot(times, x.std(axis=0), color="k", lw=2, label="GFP")
        _mark_components(ax, components)
        ax.set(xlabel="time (s)", xlim=(times[0], times[-1]))
        ax.set_title(label, pad=14)
        ax.legend(fontsize=8, loc="upper right")
    axes[0, 0].set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    return fig


def plot_trajectory(trajectory, times, channel=0, *, ch_names=None, steps_to_show=6, sample_index=0,
                    reference=None, title=None) -> plt.Figure:
    """One channel going from noise to a sample along a sampler's trajectory.

    ``trajectory`` is a list of (C, T) or (B, C, T) arrays or tensors, one per step (``sample_index`` picks
    B). Top: the signal at ``steps_to_show`` steps (an int spreads them evenly; or a list of step indices),
    with ``reference`` (C, T), e.g. the real response, dashed on the last panel. Bottom: every step as a row.
    """
    frames = [as_float_array(x, f"trajectory[{i}]") for i, x in enumerate(trajectory)]
    frames = np.stack([f[sample_index] if f.ndim == 3 else f for f in frames])  # (steps, C, T)
    ch = _channel_indices(ch_names, [channel])[0] if isinstance(channel, str) else int(channel)
    n = len(frames)
    steps = np.unique(np.linspace(0, n - 1, min(steps_to_show, n)).round().astype(int)) \
        if isinstance(steps_to_show, int) else [s % n for s in steps_to_show]
    fig = plt.figure(figsize=(2.2 * len(steps), 4.6), layout="constrained")
    grid = fig.add_gridspec(2, len(steps), height_ratios=(1, 1.1))
    first = None
    for i, step in enumerate(steps):
        ax = fig.add_subplot(grid[0, i], sharey=first)
        first = first or ax
        ax.plot(times, frames[step, ch], lw=0.8)
        if reference is not None and i == len(steps) - 1:
            ax.plot(times, as_float_array(reference, "reference")[ch], "k--", lw=0.8, label="reference")
            ax.legend(fontsize=7)
        ax.set_title(f"step {step} / {n - 1}", fontsize=9)
        ax.set_xlabel("time (s)")
    heat = fig.add_subplot(grid[1, :])
    vmax = float(np.abs(frames[:, ch]).max()) or 1.0
    image = heat.imshow(frames[:, ch], aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                        extent=(times[0], times[-1], n - 0.5, -0.5), interpolation="nearest")
    heat.set(xlabel="time (s)", ylabel="step")
    fig.colorbar(image, ax=heat)
    name = ch_names[ch] if ch_names is not None else f"channel {ch}"
    fig.suptitle(title or f"{name}: from noise (step 0) to sample (step {n - 1})")
    return fig


# --------------------------------------------------------------------------- attention


def plot_attention(weights, image=None, *, patch_grid=None, has_cls_token=True, times=None, time_points=4,
                   head=None, title=None) -> plt.Figure:
    """Which image tokens each time step of the signal attends to in cross-attention.

    ``weights`` (T_q, L) or (heads, T_q, L) are softmax weights (Vaswani et al. 2017, eq. 1), averaged over
    heads unless ``head`` is given. Top: time x token heatmap. Bottom: the patch weights at ``time_points``
    (an int spreads them evenly, or a list of times in s) laid over ``image`` on a ``patch_grid`` (h, w)
    (default: square). When T_q < len(times), as in a U-Net's downsampled levels, query i is placed evenly
    across the epoch.
    """
    w = as_float_array(weights, "weights")
    shape = w.shape
    if w.ndim == 3:
        w = w.mean(axis=0) if head is None else w[head]
    if w.ndim != 2:
        raise ValueError(f"weights must be (T_q, L) or (heads, T_q, L), got shape {shape}")
    patches = w[:, 1:] if has_cls_token else w
    if patch_grid is None:
        side = math.isqrt(patches.shape[1])
        patch_grid = (side, side)
    if patch_grid[0] * patch_grid[1] != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch tokens do not fill patch_grid={patch_grid}; "
                         "pass patch_grid=(h, w) or check has_cls_token")
    n_q = len(w)
    query_times = np.arange(n_q) if times is None else np.linspace(times[0], times[-1], n_q)
    if isinstance(time_points, int):
        picks = np.unique(np.linspace(0, n_q - 1, time_points).round().astype(int))
    else:
        picks = [int(np.argmin(np.abs(query_times - t))) for t in time_points]
    fig = plt.figure(figsize=(2.4 * len(picks) + 0.8, 5.2), layout="constrained")
    grid = fig.add_gridspec(2, len(picks), height_ratios=(1, 1.2))
    heat = fig.add_subplot(grid[0, :])
    step = (query_times[1] - query_times[0]) if n_q > 1 else 1.0
    shown = heat.imshow(w.T, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                        extent=(query_times[0] - step / 2, query_times[-1] + step / 2, -0.5, w.shape[1] - 0.5))
    heat.set(xlabel="time (s)" if times is not None else "query position",
             ylabel="image token (0 = CLS)" if has_cls_token else "image token")
    fig.colorbar(shown, ax=heat, label="attention weight")
    vmax = float(patches[picks].max())
    for i, q in enumerate(picks):
        heat.axvline(query_times[q], color="c", lw=0.8)
        ax = fig.add_subplot(grid[1, i])
        patch_map = patches[q].reshape(patch_grid)
        if image is not None:
            pixels = np.asarray(image)
            ax.imshow(pixels)
            ax.imshow(patch_map, cmap="magma", alpha=0.6, vmin=0, vmax=vmax, interpolation="nearest",
                      extent=(0, pixels.shape[1], pixels.shape[0], 0))
        else:
            ax.imshow(patch_map, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{1000 * query_times[q]:.0f} ms" if times is not None else f"query {q}", fontsize=9)
        ax.axis("off")
    fig.suptitle(title or "cross-attention: signal time steps -> image patches")
    return fig
