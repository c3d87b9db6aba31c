"""The Jupyter Book builds in fast mode, and its HTML is complete and clean.

The book is built once for this module, the way CI and the publishing workflow
build it: Jupyter Book v1 with ``-W -n --keep-going``, so a broken reference, a
missing figure, an unknown citation, a missing benchmark table or a notebook
that raises fails the build, with every warning listed. It goes to a temporary
folder with a fresh execution cache, so every notebook really runs against the
current library (jupyter-cache keys notebooks on their code only, and would
otherwise serve outputs computed with older library code).

The tests then read the HTML: every notebook and theory page has a page, every
notebook page shows a figure, no page shows a traceback or an error, and every
internal link and image points at something that exists.

``I2B_BOOK_HTML=<folder>`` checks an HTML folder built earlier instead of
building (for example ``book/_build/html``, or a copy broken on purpose to see
that these checks fail).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BUILD_TIMEOUT_S = 3600  # a hang guard only; the fast build takes minutes
ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
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
        if any(tag in ("script", "style") for tag, _ in self._open):
            return
        self.text.append(data)
        if self._inside("output", "stderr"):
            self.stderr_text.append(data)


def _toc_files(toc: dict) -> list[str]:
    """Every `file:` of a jb-book _toc.yml, the root first."""
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


@pytest.fixture(scope="module")
def toc_files() -> list[str]:
    return _toc_files(yaml.safe_load((BOOK / "_toc.yml").read_text()))


def _missing_sources(toc_files: list[str]) -> list[str]:
    """The _toc.yml entries with no source file (.md or .ipynb) under book/."""
    return [f for f in toc_files if not any((BOOK / f).with_suffix(suffix).is_file() for suffix in (".md", ".ipynb"))]


@pytest.fixture(scope="module")
def html(tmp_path_factory, toc_files) -> Path:
    """Build the fast edition once; return the HTML folder."""
    if os.environ.get("I2B_BOOK_HTML"):
        return Path(os.environ["I2B_BOOK_HTML"]).resolve()
    missing = _missing_sources(toc_files)
    if missing:
        pytest.fail(f"book/_toc.yml lists {len(missing)} page(s) whose source does not exist, so the book cannot "
                    "be built: " + ", ".join(missing) + ". Write them (notebooks/NN_name.ipynb, reached through the "
                    "book/notebooks symlink; theory pages as book/theory/name.md) or take them out of the toc.",
                    pytrace=False)
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    jupyter_book = str(jupyter_book) if jupyter_book.exists() else shutil.which("jupyter-book")
    if jupyter_book is None:
        pytest.fail('jupyter-book is not installed; pip install -e ".[dev]" installs it', pytrace=False)
    command = [jupyter_book, "build", str(BOOK), "--path-output", str(out), "-W", "-n", "--keep-going"]
    env = {**os.environ, "I2B_FAST": "1"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    seconds = time.perf_counter() - start
    log = ANSI_COLOURS.sub("", result.stdout + result.stderr)
    (out / "build.log").write_text(log)
    if result.returncode != 0:
        # Sphinx's own warnings and errors; the kernels' "running over TCP" notices are noise.
        problems = [line for line in log.splitlines()
                    if ("WARNING" in line or "ERROR" in line or "Error" in line) and not line.startswith("[IPKernelApp]")]
        pytest.fail(f"`{' '.join(command)}` failed (exit {result.returncode}) after {seconds:.0f} s. "
                    f"Warnings and errors:\n" + "\n".join(problems[-60:]) + f"\nFull log: {out / 'build.log'}",
                    pytrace=False)
    print(f"\nthe fast book built in {seconds:.0f} s")
    return (out / "_build" / "html").resolve()


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
