"""Test-wide settings and shared fixtures.

The environment variables are set at import time, before any test imports
huggingface_hub (which reads HF_HUB_OFFLINE once, at import) or matplotlib,
and before nbval starts notebook kernels (which inherit them).

The book is built at most once per run (``book_html``), for the checks of its
HTML (tests/test_book.py) and for the browser (tests/test_browser.py). The
build starts with the run and goes on beside the other tests (``book_build``);
the files that read it run last.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("I2B_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BUILD_TIMEOUT_S = 3600  # a hang guard only; the fast build takes minutes
ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="session")
def tiny_eeg_root(tmp_path_factory):
    """The tiny synthetic THINGS-EEG2 world, written once per test session."""
    from i2b_minimal import synthetic

    return synthetic.make_dataset(tmp_path_factory.mktemp("eeg") / "root", modality="eeg", preset="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_meg_root(tmp_path_factory):
    """The tiny synthetic THINGS-MEG world, written once per test session."""
    from i2b_minimal import synthetic

    return synthetic.make_dataset(tmp_path_factory.mktemp("meg") / "root", modality="meg", preset="tiny", seed=0)


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


@pytest.fixture(scope="session")
def book_toc_files() -> list[str]:
    return _toc_files(yaml.safe_load((BOOK / "_toc.yml").read_text()))


def _missing_sources(toc_files: list[str]) -> list[str]:
    """The _toc.yml entries with no source file (.md or .ipynb) under book/."""
    return [f for f in toc_files if not any((BOOK / f).with_suffix(suffix).is_file() for suffix in (".md", ".ipynb"))]


class BookBuild:
    """``jupyter-book build`` of the fast edition into ``out``, running in the background (:func:`book_build`).

    Its notebooks get a data folder of their own (``I2B_DATA_DIR``), so that they never write a synthetic world
    that nbval's run of the same notebooks is reading.
    """

    def __init__(self, jupyter_book: str, out: Path):
        self.out, self.log = out, out / "build.log"
        self.command = [jupyter_book, "build", str(BOOK), "--path-output", str(out), "-W", "-n", "--keep-going"]
        env = {**os.environ, "I2B_FAST": "1", "I2B_DATA_DIR": str(out / "data")}
        self.started = time.perf_counter()
        with self.log.open("w") as log:  # a file, not a pipe: a pipe nobody reads would stall the build when full
            # A session of its own, so that stopping it stops the notebook kernels it started too.
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            text=True, start_new_session=True)

    def html(self) -> Path:
        """Wait for the build; its HTML folder, or the test fails with the build's warnings and errors."""
        try:
            code = self.process.wait(timeout=max(1.0, BUILD_TIMEOUT_S - (time.perf_counter() - self.started)))
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"`{' '.join(self.command)}` did not finish in {BUILD_TIMEOUT_S} s; log: {self.log}",
                        pytrace=False)
        seconds = time.perf_counter() - self.started
        log = ANSI_COLOURS.sub("", self.log.read_text())
        self.log.write_text(log)
        if code != 0:
            # Sphinx's own warnings and errors; the kernels' "running over TCP" notices are noise.
            problems = [line for line in log.splitlines()
                        if ("WARNING" in line or "ERROR" in line or "Error" in line)
                        and not line.startswith("[IPKernelApp]")]
            pytest.fail(f"`{' '.join(self.command)}` failed (exit {code}) after {seconds:.0f} s. "
                        f"Warnings and errors:\n" + "\n".join(problems[-60:]) + f"\nFull log: {self.log}",
                        pytrace=False)
        print(f"\nthe fast book built in {seconds:.0f} s, beside the other tests")
        return (self.out / "_build" / "html").resolve()

    def stop(self):
        """Stop the build and its kernels if it is still running (a run stopped early, a timeout)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _reads_the_book(item) -> bool:
    return "book_html" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """The test files that read the built book (or share its browser) run last, in their own order: the build
    (:func:`book_build`) then runs beside every other test instead of before them, which on two cores saves most
    of its minutes."""
    last = {item.path for item in items if _reads_the_book(item)}
    items.sort(key=lambda item: item.path in last)  # a stable sort: each group keeps its order


@pytest.fixture(scope="session", autouse=True)
def book_build(request, tmp_path_factory):
    """The fast edition's build, started with the run when a selected test reads it (else None).

    ``I2B_BOOK_HTML=<folder>`` checks an HTML folder built earlier instead (for example ``book/_build/html``, or a
    copy broken on purpose to see that the checks fail), and nothing is built.
    """
    if os.environ.get("I2B_BOOK_HTML") or not any(map(_reads_the_book, request.session.items)):
        yield None
        return
    # The toc is read only here, so that a broken one fails the book's tests, not every test.
    problem = _why_the_book_cannot_be_built(request.getfixturevalue("book_toc_files"))
    if problem:  # book_html fails with it; the other tests run as usual
        yield problem
        return
    build = BookBuild(_jupyter_book(), tmp_path_factory.mktemp("book"))
    yield build
    build.stop()


def _jupyter_book() -> str | None:
    """The jupyter-book command of this environment, else the one on PATH, else None."""
    beside_python = Path(sys.executable).with_name("jupyter-book")
    return str(beside_python) if beside_python.exists() else shutil.which("jupyter-book")


def _why_the_book_cannot_be_built(toc_files: list[str]) -> str | None:
    missing = _missing_sources(toc_files)
    if missing:
        return (f"book/_toc.yml lists {len(missing)} page(s) whose source does not exist, so the book cannot be "
                "built: " + ", ".join(missing) + ". Write them (notebooks/NN_name.ipynb, reached through the "
                "book/notebooks symlink; theory pages as book/theory/name.md) or take them out of the toc.")
    if _jupyter_book() is None:
        return 'jupyter-book is not installed; pip install -e ".[dev]" installs it'
    return None


@pytest.fixture(scope="session")
def book_html(book_build) -> Path:
    """The fast edition, built once per run into a temporary folder with a fresh execution cache: its HTML folder
    (``I2B_BOOK_HTML``: that folder instead)."""
    if os.environ.get("I2B_BOOK_HTML"):
        return Path(os.environ["I2B_BOOK_HTML"]).resolve()
    if isinstance(book_build, str):
        pytest.fail(book_build, pytrace=False)
    return book_build.html()
