"""Test-wide settings and shared fixtures.

The environment variables are set at import time, before any test imports
huggingface_hub (which reads HF_HUB_OFFLINE once, at import) or matplotlib,
and before nbval starts notebook kernels (which inherit them).

The book is built at most once per run (``book_html``), for the checks of its
HTML (tests/test_book.py) and for the browser (tests/test_browser.py).
"""

import os
import re
import shutil
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


@pytest.fixture(scope="session")
def book_html(tmp_path_factory, book_toc_files) -> Path:
    """The fast edition, built once per run into a temporary folder with a fresh execution cache: its HTML folder.

    ``I2B_BOOK_HTML=<folder>`` checks an HTML folder built earlier instead (for example ``book/_build/html``, or a
    copy broken on purpose to see that the checks fail).
    """
    if os.environ.get("I2B_BOOK_HTML"):
        return Path(os.environ["I2B_BOOK_HTML"]).resolve()
    missing = _missing_sources(book_toc_files)
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
