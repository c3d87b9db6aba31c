"""Sphinx glue for the i2b-minimal book: editions, measured tables, and pages that read right offline.

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

The executed notebooks are also cleaned for readers of a static page:

- **No dead widgets.** A slider only works with a kernel behind it; the book has
  none, so an embedded widget would move while its figure stays put. Every
  widget output is taken out of the page, with the widget state and the
  ipywidgets scripts (which load from a CDN and expect MathJax 2). An output
  with a control in it (a slider, buttons) becomes a line that says so: each
  slider cell of the notebooks has a precomputed grid of the same figure
  beside it (``teaching.widgets.precomputed_grid``). A display-only widget
  (a progress bar) falls back to its plain-text form.
- **No machine paths.** Cell outputs print where the build machine keeps its
  data, temporary folders and Python; those become ``<data folder>``,
  ``<temporary folder>``, ``<python environment>``, ``<repository>`` and ``~``.
- **Timings labelled.** A cell that times itself (``time.perf_counter()``,
  ``.seconds``) printed how fast the build machine was under its load at that
  moment; its output gets a line that says so and where the measured tables are.
- **Maths offline.** MathJax 3 is served with the book from the
  ``django-static-mathjax`` wheel (a dev dependency that packages the MathJax
  release files), not from a CDN.
- **A clean console, offline too.** Scripts that extensions add twice are
  written once, the theme's mode is set, and the Colab badge is served from
  ``_static/`` like the favicon.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
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

BOOK = Path(__file__).resolve().parents[1]
REPOSITORY = BOOK.parent

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
# ipywidgets models that show something and take no input; anything else in a widget's tree is a control.
DISPLAY_ONLY_WIDGETS = {"BoxModel", "VBoxModel", "HBoxModel", "GridBoxModel", "OutputModel", "HTMLModel",
                        "HTMLMathModel", "LabelModel", "FloatProgressModel", "IntProgressModel", "ImageModel"}
LIVE_ONLY_NOTE = ("In a live notebook (JupyterLab, Colab) this cell shows a slider or buttons that redraw the "
                  "figure. The book runs no Python, so the precomputed grid of the same figure beside this cell "
                  "stands in for them.")

TIMED_SOURCE = re.compile(r"perf_counter\(|\.seconds\b|time\.time\(")
BUILD_TIMING_NOTE = ("Timed while this book was built, on whatever machine built it under whatever load it had: "
                     "these seconds change from build to build. The benchmarks' recorded measurements are in "
                     "the repository's benchmarks/results/ folder.")

# Remote images the notebooks show, and the copies in _static/ that the book serves instead (drawn for the book).
LOCAL_IMAGES = {"https://colab.research.google.com/assets/colab-badge.svg": "colab-badge.svg"}

# MathJax 3's combined TeX component and the folders it loads fonts and extensions from, inside the wheel.
MATHJAX_PACKAGE = "mathjax"  # the import name of django-static-mathjax
MATHJAX_RELEASE = Path("static", "mathjax", "es5")
MATHJAX_ENTRY = "tex-mml-chtml.js"
MATHJAX_PARTS = ("a11y", "adaptors", "input", "output", "sre", "ui")
MATHJAX_STATIC = "mathjax"  # under the book's _static/

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
    # The theme's script logs an error on every page whose mode (a template variable) is unset, then uses "auto".
    config.html_context = {"default_mode": "auto", **config.html_context}
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


def _widget_tree(state: dict, model_id: str) -> set[str]:
    """The model names of a widget and of all its children, from the notebook's saved widget state."""
    names, todo = set(), [model_id]
    while todo:
        model = state.get(todo.pop(), {})
        names.add(model.get("model_name", "unknown"))
        todo += [child.removeprefix("IPY_MODEL_") for child in model.get("state", {}).get("children", [])]
    return names


def _remove_widgets(app, doctree) -> None:
    """Take every widget output out of a notebook page: a note where it had a control, plain text otherwise."""
    js_files = getattr(app.env, "nb_metadata", {}).get(app.env.docname, {}).get("js_files", {})
    _, state_script = js_files.get("ipywidgets_state", (None, {}))
    state = json.loads(state_script.get("body", "{}").replace(r"<\/script>", "</script>")).get("state", {})
    for bundle in list(doctree.findall(lambda n: isinstance(n, nodes.container) and n.get("nb_element") == "mime_bundle")):
        views = [c for c in bundle.children if c.get("mime_type") == WIDGET_VIEW_MIME]
        if not views:
            continue
        script = views[0].astext()
        model_id = json.loads(script[script.index(">") + 1:script.rindex("</script>")])["model_id"]
        if _widget_tree(state, model_id) <= DISPLAY_ONLY_WIDGETS:
            bundle.remove(views[0])  # the other mime types of the output remain: its text/plain form
        else:
            note = nodes.paragraph(classes=["i2b-live-only"])
            note += nodes.emphasis(text=LIVE_ONLY_NOTE)
            bundle.replace_self(note)
    # Nothing on the page uses the widget state any more; without it the page loads no ipywidgets scripts.
    for key in [key for key in js_files if key.startswith("ipywidgets_")]:
        del js_files[key]


def _machine_paths() -> list[tuple[re.Pattern, str]]:
    """Where the build machine keeps things, longest first, each with what a reader sees instead."""
    data = Path(os.environ["I2B_DATA_DIR"]).expanduser() if os.environ.get("I2B_DATA_DIR", "").strip() else None
    places = {"<python environment>": sys.prefix, "<temporary folder>": tempfile.gettempdir(),
              "<data folder>": data, "<repository>": REPOSITORY, "~": Path.home()}
    prefixes = {}
    for placeholder, path in places.items():
        if path is None:
            continue
        for form in {os.path.abspath(path), os.path.realpath(path)}:
            if form != os.sep:
                prefixes.setdefault(form, placeholder)
    # A prefix ends at a path separator or where the path ends, so /work/main never matches /work/mainline.
    return [(re.compile(re.escape(prefix) + r"(?![\w.-])"), placeholder)
            for prefix, placeholder in sorted(prefixes.items(), key=lambda item: -len(item[0]))]


def _clean_outputs(app, doctree) -> None:
    """In every code cell's output: the build machine's paths replaced, and self-timed cells labelled."""
    paths = _machine_paths()
    for cell in list(doctree.findall(lambda n: isinstance(n, nodes.container) and n.get("nb_element") == "cell_code")):
        outputs = [c for c in cell.children if c.get("nb_element") == "cell_code_output"]
        if not outputs:
            continue
        for text in list(outputs[0].findall(nodes.Text)):
            cleaned = str(text)
            for prefix, placeholder in paths:
                cleaned = prefix.sub(placeholder, cleaned)
            if cleaned != str(text):
                text.parent.replace(text, nodes.Text(cleaned))
        source = "".join(c.astext() for c in cell.children if c.get("nb_element") == "cell_code_source")
        if TIMED_SOURCE.search(source):
            note = nodes.paragraph(classes=["i2b-build-timing"])
            note += nodes.emphasis(text=BUILD_TIMING_NOTE)
            outputs[0] += note


def _mathjax_release() -> Path | None:
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    release = Path(spec.origin).parent / MATHJAX_RELEASE if spec and spec.origin else None
    return release if release and (release / MATHJAX_ENTRY).is_file() else None


def _serve_mathjax(app, config) -> None:
    if _mathjax_release() is None:
        logger.warning("MathJax 3 is not installed (django-static-mathjax), so the book's maths would need a CDN; "
                       'pip install -e ".[dev]" installs it')
        return
    config.mathjax_path = f"{MATHJAX_STATIC}/{MATHJAX_ENTRY}"  # relative: Sphinx serves it from _static/


def _copy_mathjax(app, exception) -> None:
    release = _mathjax_release()
    if exception is not None or release is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / MATHJAX_STATIC
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(release / MATHJAX_ENTRY, target / MATHJAX_ENTRY)
    for part in MATHJAX_PARTS:
        shutil.copytree(release / part, target / part, dirs_exist_ok=True)


def _serve_images_locally(app, pagename, templatename, context, doctree) -> None:
    for remote, local in LOCAL_IMAGES.items():
        if "body" in context:
            context["body"] = context["body"].replace(f'src="{remote}"',
                                                      f'src="{context["pathto"]("_static/" + local, 1)}"')


def _drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """Each script once per page: sphinx-thebe's inline settings (``const THEBE_JS_URL = ...``) and
    sphinx-togglebutton's reach the page twice under Jupyter Book, and a second ``const`` is a script error."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        tag = context["js_tag"](script)  # what the page will hold; copies differ only in their priority
        if tag not in seen:
            seen.add(tag)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.add_config_value("i2b_edition", "full", "env", types=[str])
    _inline_figures()
    app.connect("config-inited", _configure_edition)
    app.connect("config-inited", _serve_mathjax)
    app.connect("doctree-read", _remove_widgets)
    app.connect("doctree-read", _clean_outputs)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)  # after every extension added its own
    app.connect("html-page-context", _serve_images_locally)
    app.add_directive("measured-results", MeasuredResults)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
