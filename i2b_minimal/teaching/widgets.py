"""Sliders for the tutorial figures, and the static grid that stands in for them in the book.

A live widget needs a running kernel; the rendered book has none. So every slider figure
comes in two forms: ``interactive_figure`` redraws a figure as the controls move, and
``precomputed_grid`` draws the same function at a few fixed settings into one static
Figure. The controls offer a fixed list of values rather than a continuous range, because
sampling a diffusion model is slow: a notebook precomputes results for those values once,
and the slider only picks among them.

Everything works headless (no display, as under nbval): the widgets are plain ipywidgets
objects, and drawing goes through an ``ipywidgets.Output``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from i2b_minimal.method.unet import CONDITIONING_MODES


def time_slider(times: Sequence[float], value: float | None = None,
                description: str = "time") -> widgets.SelectionSlider:
    """A slider over the samples of ``times`` (s), labelled in ms; its value is the time in s."""
    times = [float(t) for t in times]
    if not times:
        raise ValueError("times is empty")
    value = min(times, key=lambda t: abs(t - value)) if value is not None else times[len(times) // 2]
    return widgets.SelectionSlider(options=[(f"{1000 * t:.0f} ms", t) for t in times], index=times.index(value),
                                   description=description, continuous_update=False)


def guidance_slider(values: Sequence[float] = (0.0, 1.0, 2.0, 3.0, 5.0), value: float = 1.0,
                    description: str = "guidance") -> widgets.SelectionSlider:
    """Classifier-free guidance scale w in eps_uncond + w (eps_cond - eps_uncond) (Ho & Salimans 2022, eq. 6,
    written as diffusers does): 0 unconditional, 1 conditional, > 1 amplified."""
    return _choice_slider(values, value, description)


def steps_slider(values: Sequence[int] = (10, 25, 50, 100, 250), value: int = 50,
                 description: str = "steps") -> widgets.SelectionSlider:
    """The number of sampling steps (DDIM can skip steps; Song et al. 2021)."""
    return _choice_slider(values, value, description)


def subject_slider(subjects: Sequence[int], value: int | None = None,
                   description: str = "subject") -> widgets.SelectionSlider:
    """A slider over subject numbers, labelled "sub-01", ...; its value is the int."""
    subjects = [int(s) for s in subjects]
    if not subjects:
        raise ValueError("subjects is empty")
    value = subjects[0] if value is None else int(value)
    if value not in subjects:
        raise ValueError(f"value {value} is not one of the subjects {subjects}")
    return widgets.SelectionSlider(options=[(f"sub-{s:02d}", s) for s in subjects], index=subjects.index(value),
                                   description=description, continuous_update=False)


def conditioning_buttons(modes: Sequence[str] = CONDITIONING_MODES, value: str = "cross_attention",
                         description: str = "conditioning") -> widgets.ToggleButtons:
    """Buttons for the U-Net's conditioning mode (how the image reaches the denoiser)."""
    if value not in modes:
        raise ValueError(f"value {value!r} is not one of the modes {list(modes)}")
    return widgets.ToggleButtons(options=list(modes), value=value, description=description)


# The sliders are built with index=, not value=: ipywidgets 8 leaves the label blank when
# value= names the first option.
def _choice_slider(values, value, description) -> widgets.SelectionSlider:
    values = list(values)
    if value not in values:
        raise ValueError(f"{description}: value {value!r} is not one of the precomputed values {values}")
    return widgets.SelectionSlider(options=values, index=values.index(value),
                                   description=description, continuous_update=False)


def interactive_figure(plot_fn: Callable[..., plt.Figure | None], **controls: widgets.ValueWidget) -> widgets.VBox:
    """The controls above a figure that ``plot_fn(**{name: control.value})`` redraws when any of them moves.

    ``plot_fn`` returns a matplotlib Figure (or draws with pyplot and returns None). Example::

        interactive_figure(lambda t: viz.plot_topomap(x[:, index(t)], ch_names), t=time_slider(times))
    """
    if not controls:
        raise ValueError("interactive_figure needs at least one control, e.g. t=time_slider(times)")
    wrong = [name for name, control in controls.items() if not isinstance(control, widgets.ValueWidget)]
    if wrong:
        raise ValueError(f"controls {wrong} are not ipywidgets value widgets (use time_slider(...) and friends)")

    def draw(**values):
        figure = plot_fn(**values)
        if figure is not None:
            display(figure)
            plt.close(figure)  # shown once here; an open figure would be shown again by the inline backend

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox(list(controls.values())), output])


def precomputed_grid(plot_fn: Callable[..., object], settings: Sequence[dict], ncols: int = 3, *,
                     panel_size: tuple[float, float] = (3.2, 2.6), title: str | None = None) -> plt.Figure:
    """``plot_fn(ax=ax, **setting)`` drawn once per setting, in a static grid titled by the settings.

    The book's stand-in for a slider figure: e.g. ``settings=[{"guidance_scale": w} for w in (0, 1, 3)]``.
    ``plot_fn`` draws into the given axes (the viz functions that take ``ax=`` do).
    """
    settings = list(settings)
    if not settings:
        raise ValueError("settings is empty: give at least one dict of keyword arguments for plot_fn")
    ncols = max(1, min(ncols, len(settings)))
    nrows = -(-len(settings) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(settings):]:
        fig.delaxes(ax)  # fewer settings than cells: leave no empty frames
    for ax, setting in zip(axes.ravel(), settings):
        plot_fn(ax=ax, **setting)
        # :g keeps computed settings readable (0.1, not 0.09999999999999998).
        ax.set_title(", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                               for name, value in setting.items()), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
