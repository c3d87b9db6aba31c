"""Sphinx glue for the i2b-minimal book: the fast and full editions, and measured tables.

Two editions of the book exist, chosen by the same switch the notebooks read,
``I2B_FAST`` (``i2b_minimal.runtime.fast_mode``):

- the **fast** edition (``I2B_FAST=1``, what CI builds) runs every notebook on
  small data with few steps, in about a minute each;
- the **full** edition (``I2B_FAST`` unset or ``0``) runs them for real.

jupyter-cache keys an executed notebook on its code cells only, not on the
environment, so a fast-mode result would be served to a full-mode build from
a shared cache. Each edition therefore gets its own cache folder, and the
edition is a Sphinx config value that forces a full re-read when it changes.
Every page of the fast edition carries a banner that says so.

The ``measured-results`` directive includes a Markdown table written by a
benchmark (for example ``benchmarks/results/quality.md``), so that the book
never shows a number typed in by hand. A missing required file is a build
warning (an error under ``-W``); an ``:optional:`` one shows the directive's
body instead, which says how to produce it. Headings in the file become
rubrics: a page cannot nest sections inside a directive.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from i2b_minimal.runtime import fast_mode

logger = logging.getLogger(__name__)

# Per-cell limits. A fast-mode notebook runs in about a minute in total, so a
# cell that needs ten is stuck; a full-mode training cell may take hours on a CPU.
CELL_TIMEOUT_S = {"fast": 600, "full": 6 * 3600}

FAST_BANNER = (
    "Fast edition: the notebooks ran with <code>I2B_FAST=1</code> (small data, few "
    "training steps), so their figures and numbers show the method working, not its "
    "best results. Build without <code>I2B_FAST</code> for the full edition."
)


def _inline_figures() -> None:
    # Kernels inherit this process's environment. MPLBACKEND=Agg (set by the test
    # suite, and by many CI setups) would replace the inline backend, and every
    # notebook figure would silently vanish from the book.
    if os.environ.get("MPLBACKEND", "").lower() == "agg":
        del os.environ["MPLBACKEND"]


def _configure_edition(app, config) -> None:
    edition = "fast" if fast_mode() else "full"
    config.i2b_edition = edition
    config.nb_execution_cache_path = str(Path(app.outdir).parent / f".jupyter_cache-{edition}")
    config.nb_execution_timeout = CELL_TIMEOUT_S[edition]
    config.myst_substitutions = {**config.myst_substitutions, "edition": edition}
    if edition == "fast":
        config.html_theme_options = {**config.html_theme_options, "announcement": FAST_BANNER}
    logger.info(f"[i2b] building the {edition} edition; notebook cache {config.nb_execution_cache_path}")


def _headings_to_rubrics(lines: list[str]) -> list[str]:
    """Every ``## Title`` line becomes a MyST rubric directive (colon fence); other lines stay as they are."""
    out = []
    for line in lines:
        heading = re.match(r"^#{1,6}\s+(.*\S)\s*$", line)
        out += [f":::{{rubric}} {heading.group(1)}", ":::"] if heading else [line]  # a colon fence: titles hold backticks
    return out


class MeasuredResults(SphinxDirective):
    """Include a benchmark's Markdown results file, or say how to produce it.

    Usage (the path is relative to the page, like ``include``)::

        ```{measured-results} ../../benchmarks/results/quality.md
        :optional:
        Text shown while the file does not exist: which command writes it.
        ```
    """

    required_arguments = 1
    has_content = True
    option_spec = {"optional": lambda argument: True}

    def run(self) -> list[nodes.Node]:
        _, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        path = Path(path)
        # Rebuild the page when the benchmark rewrites (or first writes) its file.
        self.env.note_dependency(str(path))
        container = nodes.container(classes=["measured-results"])
        if path.is_file():
            lines = _headings_to_rubrics(path.read_text(encoding="utf-8").splitlines())
            self.state.nested_parse(StringList(lines, source=str(path)), 0, container)
            return [container]
        if "optional" not in self.options:
            logger.warning(
                f"measured results file not found: {path} -- run the benchmark that writes it "
                "(see the text below this directive) and commit the file",
                location=self.get_location(),
            )
        note = nodes.admonition(classes=["note"])
        note += nodes.title(text="Not measured yet")
        self.state.nested_parse(self.content, self.content_offset, note)
        container += note
        return [container]


def setup(app):
    app.add_config_value("i2b_edition", "full", "env", types=[str])
    _inline_figures()
    app.connect("config-inited", _configure_edition)
    app.add_directive("measured-results", MeasuredResults)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
