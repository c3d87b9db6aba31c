"""The Jupyter Book builds in fast mode, and its HTML is complete and clean.

The book is built once per test run (``book_html`` in tests/conftest.py, shared
with the browser tests; the build starts with the run, beside the other tests,
and this file runs last), the way CI and the publishing workflow build it:
Jupyter Book v1 with ``-W -n --keep-going``, so a broken reference, a
missing figure, an unknown citation, a missing benchmark table or a notebook
that raises fails the build, with every warning listed. It goes to a temporary
folder with a fresh execution cache, so every notebook really runs against the
current library (jupyter-cache keys notebooks on their code only, and would
otherwise serve outputs computed with older library code).

The tests then read the HTML: every notebook and theory page has a page, every
notebook page shows a figure, no page shows a traceback or an error, every
internal link and image points at something that exists, no page embeds a
widget that cannot work without a kernel, no output shows the build machine's
paths, self-timed outputs say they are this build's, and MathJax and the
favicon are served with the book.

``I2B_BOOK_HTML=<folder>`` checks an HTML folder built earlier instead of
building (for example ``book/_build/html``, or a copy broken on purpose to see
that these checks fail).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
ERROR_WORDS = re.compile(r"\b\w*(Error|Exception)\b|Traceback")
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """What the tests need from one HTML page: links, images, anchors, text, and error-like outputs."""

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.links: list[tuple[str, str]] = []  # (tag, url) of every href and src
        self.output_images: list[str] = []  # src of <img> inside a notebook cell's output
        self.images: list[str] = []
        self.anchors: set[str] = set()
        self.text: list[str] = []
        self.error_blocks: list[str] = []  # classes of traceback / docutils error elements
        self.stderr_text: list[str] = []
        self.output_text: list[str] = []  # text inside notebook cell outputs
        self.scripts: list[dict[str, str]] = []  # the attributes of every <script>
        self.inline_scripts: list[str] = []  # the text of every <script> without src
        self.icons: list[str] = []  # href of every <link rel="icon">
        self.classes: list[str] = []  # every class of every element, in order (a class may repeat)
        self.redirect = False  # a <meta http-equiv="refresh"> page
        self._open: list[tuple[str, set[str]]] = []
        self.feed(path.read_text(encoding="utf-8"))

    def _inside(self, *classes: str) -> bool:
        return any(set(classes) <= element_classes for _, element_classes in self._open)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        for key in ("id", "name"):
            if attrs.get(key):
                self.anchors.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.links.append((tag, attrs[key]))
        if tag == "img":
            self.images.append(attrs.get("src", ""))
            if self._inside("cell_output"):
                self.output_images.append(attrs.get("src", ""))
        if classes & {"traceback", "system-message", "problematic"}:
            self.error_blocks.append(" ".join(sorted(classes)))
        if tag == "script":
            self.scripts.append(attrs)
        if tag == "link" and "icon" in (attrs.get("rel") or "").split():
            self.icons.append(attrs.get("href", ""))
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            self.redirect = True
        self.classes += sorted(classes)
        if tag not in VOID_TAGS:
            self._open.append((tag, classes))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self._open.pop()

    def handle_endtag(self, tag):
        # Close up to the matching tag; tolerate the odd unclosed element.
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                break

    def handle_data(self, data):
        if self._open and self._open[-1][0] == "script" and "src" not in self.scripts[-1]:
            self.inline_scripts.append(data)
        if any(tag in ("script", "style") for tag, _ in self._open):
            return
        self.text.append(data)
        if self._inside("output", "stderr"):
            self.stderr_text.append(data)
        if self._inside("cell_output"):
            self.output_text.append(data)


@pytest.fixture(scope="module")
def toc_files(book_toc_files) -> list[str]:
    return book_toc_files


@pytest.fixture(scope="module")
def html(book_html) -> Path:
    return book_html


@pytest.fixture(scope="module")
def pages(html) -> dict[Path, Page]:
    # _static holds the theme's Jinja templates (.html files that are not pages).
    return {path: Page(path) for path in sorted(html.rglob("*.html")) if "_static" not in path.relative_to(html).parts}


def test_the_notebooks_are_included_not_copied():
    link = BOOK / "notebooks"
    assert link.is_symlink() and link.resolve() == (ROOT / "notebooks").resolve(), \
        "book/notebooks must be the symlink ../notebooks, so the book renders the notebooks themselves"


def test_the_toc_lists_every_notebook_and_theory_page(toc_files):
    on_disk = {f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    on_disk |= {f"theory/{p.stem}" for p in (BOOK / "theory").glob("*.md")}
    listed = {Path(f).with_suffix("").as_posix() for f in toc_files}
    assert on_disk, "no notebooks or theory pages found"
    assert on_disk <= listed, f"not in book/_toc.yml: {sorted(on_disk - listed)}"


def test_every_toc_entry_has_a_page(html, toc_files):
    missing = [f for f in toc_files if not (html / Path(f).with_suffix(".html")).is_file()]
    assert not missing, f"no HTML page for: {missing}"


def test_every_notebook_page_shows_a_figure(html, pages, toc_files):
    notebooks = [html / Path(f).with_suffix(".html") for f in toc_files if f.startswith("notebooks/")]
    assert notebooks, "the book lists no notebooks"
    without = []
    for path in notebooks:
        page = pages.get(path)
        figures = [src for src in (page.output_images if page else [])
                   if src.startswith("data:image/") or (path.parent / unquote(urlsplit(src).path)).is_file()]
        if not figures:
            without.append(str(path.relative_to(html)) + ("" if page else " (no page at all)"))
    assert not without, "no rendered figure in any cell output of: " + ", ".join(without)


def test_the_landing_page_shows_a_figure_and_the_edition(html, pages):
    landing = pages[html / "intro.html"]
    assert any((html / unquote(urlsplit(src).path)).is_file() for src in landing.images), "intro has no image"
    assert "This is the fast edition" in " ".join("".join(landing.text).split())


def test_no_page_shows_a_traceback_or_an_error(html, pages):
    problems = []
    for path, page in pages.items():
        name = path.relative_to(html)
        text = "".join(page.text)
        if "Traceback (most recent call last)" in text or "Executing notebook failed" in text:
            problems.append(f"{name}: a Python traceback")
        problems += [f"{name}: an element of class {c!r}" for c in page.error_blocks]
        stderr = "".join(page.stderr_text)
        if ERROR_WORDS.search(stderr):
            problems.append(f"{name}: error output on stderr: {ERROR_WORDS.search(stderr).group(0)!r}")
    assert not problems, "\n".join(problems)


def test_every_internal_link_resolves(html, pages):
    broken = []
    for path, page in pages.items():
        for tag, url in page.links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or not url or url.startswith("#!"):
                continue  # external (http, https, mailto, data, javascript) or no target
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(html)}: <{tag}> {url} (no file)")
            elif parts.fragment and target.suffix == ".html":
                anchors = pages[target].anchors if target in pages else Page(target).anchors
                if unquote(parts.fragment) not in anchors:
                    broken.append(f"{path.relative_to(html)}: <{tag}> {url} (no anchor)")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:50])


def _code_cells(notebook: Path) -> list[str]:
    """The source of every code cell of a notebook."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def _notebook_pages(html, pages, toc_files) -> dict[Path, Page]:
    """Each notebook's source file and its page."""
    return {ROOT / f"{name}.ipynb": pages[html / f"{name}.html"] for name in toc_files if name.startswith("notebooks/")}


def test_no_page_embeds_a_widget_and_each_slider_cell_says_where_its_figures_are(html, pages, toc_files):
    # A widget in a static page moves while its figure stays put; the book removes them (book/_ext/i2b_book.py).
    widget_scripts = [f"{path.relative_to(html)}: <script {attrs}>" for path, page in pages.items()
                      for attrs in page.scripts
                      if "jupyter.widget" in attrs.get("type", "") or "html-manager" in attrs.get("src", "")]
    assert not widget_scripts, "widgets (or the ipywidgets scripts) are still embedded:\n" + "\n".join(widget_scripts)
    wrong = []
    for notebook, page in _notebook_pages(html, pages, toc_files).items():
        sliders = sum("widgets.interactive_figure(" in source for source in _code_cells(notebook))
        notes = page.classes.count("i2b-live-only")
        if notes != sliders:
            wrong.append(f"{notebook.name}: {sliders} slider cell(s), {notes} note(s) that the grid stands in")
    assert not wrong, "\n".join(wrong)


def _build_machine_paths() -> set[str]:
    """Folders of the machine that built the book, which a reader's machine does not have."""
    places = {str(ROOT), sys.prefix, tempfile.gettempdir() + os.sep, str(Path.home()) + os.sep}
    if os.environ.get("I2B_DATA_DIR"):
        places.add(os.environ["I2B_DATA_DIR"])
    return {place for place in places if place.strip(os.sep)}


def test_no_output_shows_a_path_of_the_build_machine(html, pages):
    found = []
    for path, page in pages.items():
        text = "".join(page.output_text)
        found += [f"{path.relative_to(html)}: {place}" for place in sorted(_build_machine_paths()) if place in text]
    assert not found, "cell outputs show where the build machine keeps things:\n" + "\n".join(found)


def test_every_self_timed_output_says_it_is_this_builds(html, pages, toc_files):
    timed = re.compile(r"time\.perf_counter\(\)|\.seconds\b")
    wrong = []
    for notebook, page in _notebook_pages(html, pages, toc_files).items():
        cells = sum(bool(timed.search(source)) for source in _code_cells(notebook))
        labels = page.classes.count("i2b-build-timing")
        if labels != cells:
            wrong.append(f"{notebook.name}: {cells} cell(s) time themselves, {labels} output(s) say so")
    assert not wrong, "\n".join(wrong)


def test_no_page_repeats_an_inline_script(html, pages):
    # The same inline script twice declares its `const`s twice: a script error in every reader's console.
    repeated = []
    for path, page in pages.items():
        bodies = [body for body in page.inline_scripts if body.strip()]
        repeated += [f"{path.relative_to(html)}: {body[:80]}" for body in sorted(set(bodies)) if bodies.count(body) > 1]
    assert not repeated, "inline scripts repeated:\n" + "\n".join(repeated)


def test_maths_and_every_script_are_served_with_the_book(html, pages):
    remote = [f"{path.relative_to(html)}: {attrs['src']}" for path, page in pages.items() for attrs in page.scripts
              if urlsplit(attrs.get("src", "")).scheme]
    assert not remote, "pages load scripts from the network:\n" + "\n".join(remote)
    maths = pages[html / "theory" / "ddpm.html"]
    assert "math" in maths.classes, "theory/ddpm has no maths to render"
    mathjax = [attrs["src"] for attrs in maths.scripts if "mathjax" in attrs.get("src", "").lower()]
    assert mathjax, "theory/ddpm loads no MathJax"
    assert (maths.path.parent / unquote(urlsplit(mathjax[0]).path)).is_file()
    fonts = html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) > 10, f"MathJax's fonts are not in {fonts}"


def test_every_page_names_its_icon(html, pages):
    # Without <link rel="icon"> a browser asks the server for /favicon.ico, a 404 in its console. (index.html is
    # only a redirect to the landing page, which the browser follows before it looks for an icon.)
    without = [str(path.relative_to(html)) for path, page in pages.items() if not page.redirect
               and not any((path.parent / unquote(urlsplit(icon).path)).is_file() for icon in page.icons)]
    assert not without, "no icon on: " + ", ".join(without)
