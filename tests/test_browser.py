"""The notebooks and the book as their readers meet them: in a real browser.

- JupyterLab, started by a fixture on 127.0.0.1 with a token, opens a slider
  notebook, runs it, and a slider moved with the keyboard redraws its figure
  (the image bytes differ before and after).
- The built book (built once per run, ``book_html`` in conftest.py, shared with
  tests/test_book.py), served over HTTP on 127.0.0.1 with every other host
  blocked: each notebook page shows its figures with no error output and no
  widget, MathJax typesets the maths, and the console shows no error.

Playwright drives the system's Chromium (Debian: ``apt-get install chromium``;
``playwright install`` downloads browsers from a host that CI cannot reach).
Where either is missing the tests skip and say so, except under CI
(``CI=true``, set by .ci/run, which installs both), where they fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # the fixture `browser` skips (or, under CI, fails) and says why
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[1]
SLIDER_NOTEBOOK = "00_welcome.ipynb"  # small and quick, with an IntSlider that picks the picture shown
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
LAB_START_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_MS = 300_000  # the fast notebook runs in well under a minute; this only guards against a hang
REDRAW_TIMEOUT_MS = 60_000
PAGE_TIMEOUT_MS = 60_000


def _missing(reason: str):
    """Skip with the reason; under CI, where the browser is installed on purpose, fail instead."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: the browser tests must run here; .ci/run installs what they need)",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        _missing('Playwright is not installed: pip install -e ".[dev]" installs it')
    executable = os.environ.get("I2B_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if executable is None:
        _missing("no Chromium found (looked for " + ", ".join(BROWSERS) + "); on Debian or Ubuntu: "
                 "apt-get install chromium, or name one with I2B_CHROMIUM=/path/to/chrome")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {process.returncode} before serving:\n{log.read_text()[-3000:]}",
                        pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer {url} within {LAB_START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}",
                pytrace=False)


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """A JupyterLab server on a copy of the slider notebook: (its URL, its token). Stopped afterwards."""
    folder = tmp_path_factory.mktemp("lab")
    # A copy, so that JupyterLab's autosave never writes outputs into the repository's notebook.
    shutil.copy(ROOT / "notebooks" / SLIDER_NOTEBOOK, folder / SLIDER_NOTEBOOK)
    # JupyterLab renders only the cells near the viewport (windowing); a test that looks for the slider
    # after Run All has scrolled to the end needs them all. And no news feed: the server stays offline.
    settings = folder / "settings" / "@jupyterlab"
    for extension, values in (("notebook-extension/tracker", {"windowingMode": "none"}),
                              ("apputils-extension/notification", {"fetchNews": "false"})):
        (settings / f"{extension}.jupyterlab-settings").parent.mkdir(parents=True, exist_ok=True)
        (settings / f"{extension}.jupyterlab-settings").write_text(json.dumps(values))
    token, port = secrets.token_hex(16), _free_port()
    jupyter = Path(sys.executable).with_name("jupyter")
    command = [str(jupyter if jupyter.exists() else "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
               "--ServerApp.allow_root=True",  # CI runs as root
               # No news, no update check, no extension index: the server must not reach for the network.
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
    env = {**os.environ, "I2B_FAST": "1",
           "I2B_DATA_DIR": str(folder / "data"),  # the kernel makes the notebook's data here, not in data/
           # A fresh configuration, settings and workspace: nothing of the machine's own JupyterLab.
           "JUPYTER_CONFIG_DIR": str(folder / "config"), "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces")}
    env.pop("MPLBACKEND", None)  # the test suite's Agg would hide every inline figure
    log = folder / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(f"{url}/api/status?token={token}", process, log)
        yield url, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The figure that the first slider's widget shows: the <img> in the Output beside the slider (a PNG data URL).
FIGURE_SRC = """() => {
    const image = document.querySelector('.widget-slider')?.closest('.widget-vbox')?.querySelector('.widget-output img');
    return image && image.src.startsWith('data:image/png') ? image.src : null;
}"""


def _prompts(page) -> list[str]:
    return page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())")


def _accept_kernel_dialog(page, timeout_ms: int) -> None:
    """Press "Select" if JupyterLab asks which kernel to start (its default is the notebook's Python 3)."""
    try:
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=timeout_ms)
    except PlaywrightTimeout:
        pass  # no dialog: the kernel was up


def _choose_run_all_cells(page, tries: int = 12) -> None:
    """Run > Run All Cells from the menu bar; a dialog that comes up first (the kernel choice, which a busy machine
    may show at any moment) is accepted, and the two clicks are tried again."""
    menu = page.locator(".lm-MenuBar-itemLabel", has_text="Run").first
    item = page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first
    for _ in range(tries):
        _accept_kernel_dialog(page, timeout_ms=500)
        try:
            menu.click(timeout=5_000)
            item.click(timeout=5_000)
            return
        except PlaywrightTimeout:
            if page.locator(".jp-Dialog").count() == 0:  # a dialog is accepted above; Escape would cancel it
                page.keyboard.press("Escape")  # close a half-open menu before the next try
    menu.click()  # once more with the page's timeout, so that a failure says what covered the menu
    item.click()


def _run_all_cells(page, attempts: int = 4) -> None:
    """Run > Run All Cells, as a reader does, until every code cell has run.

    Clicked while the notebook's kernel is still connecting, Run All either runs nothing or asks which
    kernel to start (the dialog's default, the notebook's own Python 3, is accepted, as a reader would),
    and starting it can drop the cells queued behind the first. So while the kernel sits idle with cells
    that never ran, the menu is used again (the notebook can run twice: its data is made once).
    """
    for _ in range(attempts):
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=RUN_ALL_TIMEOUT_MS)
        _choose_run_all_cells(page)
        _accept_kernel_dialog(page, timeout_ms=5_000)
        deadline, stalled = time.monotonic() + RUN_ALL_TIMEOUT_MS / 1000, 0
        while time.monotonic() < deadline:
            time.sleep(2)
            prompts = _prompts(page)
            if prompts and all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts):
                return
            idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
            stalled = stalled + 1 if idle and not any("*" in prompt for prompt in prompts) else 0
            if stalled >= 5:  # ten seconds idle with cells that never ran: nothing more will run
                break
    pytest.fail(f"Run All Cells did not run every cell in {attempts} tries; {_notebook_state(page)}", pytrace=False)


def _notebook_state(page) -> str:
    """The execution prompts and any error output, for a failure message."""
    prompts = _prompts(page)
    errors = page.eval_on_selector_all("[data-mime-type='application/vnd.jupyter.error'], .jp-OutputArea-output"
                                       "[data-mime-type='application/vnd.jupyter.stderr']",
                                       "els => els.map(e => e.innerText.slice(-600))")
    return f"prompts {' '.join(prompts)}; error outputs: {errors or 'none'}"


def test_jupyterlab_runs_a_slider_notebook_and_the_figure_follows_the_slider(browser, jupyter_lab):
    url, token = jupyter_lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(f"{url}/lab/tree/{SLIDER_NOTEBOOK}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    _run_all_cells(page)

    slider = page.locator(".widget-slider .noUi-handle").first
    try:
        slider.wait_for(timeout=REDRAW_TIMEOUT_MS)
        slider.scroll_into_view_if_needed()
    except PlaywrightTimeout:
        pytest.fail(f"no slider appeared after Run All Cells; {_notebook_state(page)}", pytrace=False)
    page.wait_for_function(FIGURE_SRC, timeout=REDRAW_TIMEOUT_MS)
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0, _notebook_state(page)
    before = page.evaluate(FIGURE_SRC)
    readout = page.locator(".widget-slider .widget-readout").first.inner_text()

    slider.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"before => ({FIGURE_SRC})() !== before", arg=before, timeout=REDRAW_TIMEOUT_MS)
    after = page.evaluate(FIGURE_SRC)
    assert page.locator(".widget-slider .widget-readout").first.inner_text() != readout, "the slider did not move"
    assert after is not None and after != before, "the figure did not change when the slider moved"
    page.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the test reads the browser's view of each request instead
        pass


@pytest.fixture(scope="module")
def book_server(book_html):
    """The built book over HTTP on 127.0.0.1, as a reader's browser gets it from a web server: its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(book_html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _visit(browser, url: str) -> tuple[object, list[str]]:
    """Open ``url`` with every other host blocked; return the page and what went wrong in its console."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url} ({request.failure})"))
    page.on("response", lambda response: response.status >= 400 and problems.append(
        f"HTTP {response.status}: {response.url}"))
    local = url.split("/", 3)[:3]
    page.route("**/*", lambda route: route.continue_() if route.request.url.split("/", 3)[:3] == local
               or route.request.url.startswith("data:") else route.abort("blockedbyclient"))
    page.goto(url, wait_until="load")
    return page, problems


def test_the_book_notebook_pages_show_figures_no_errors_no_widgets_and_a_clean_console(browser, book_server,
                                                                                     book_toc_files):
    wrong = []
    for name in [f for f in book_toc_files if f.startswith("notebooks/")]:
        page, problems = _visit(browser, f"{book_server}/{name}.html")
        page.wait_for_load_state("networkidle")
        figures = page.eval_on_selector_all(
            ".cell_output img", "images => images.filter(i => i.complete && i.naturalWidth > 0).length")
        if figures == 0:
            problems.append("no figure in any cell output")
        errors = page.locator(".cell_output .traceback, .cell_output .output.error").count()
        if errors:
            problems.append(f"{errors} error output(s)")
        widgets = page.locator(".jupyter-widgets, .widget-slider, script[type*='jupyter.widget']").count()
        if widgets:
            problems.append(f"{widgets} widget element(s)")
        wrong += [f"{name}: {problem}" for problem in problems]
        page.close()
    assert not wrong, "\n".join(wrong)


def test_the_book_typesets_its_maths_offline(browser, book_server):
    # theory/ddpm is the page with the most equations; every host but the book's own is blocked.
    page, problems = _visit(browser, f"{book_server}/theory/ddpm.html")
    page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0", timeout=PAGE_TIMEOUT_MS)
    untypeset = page.locator(".math:not(:has(mjx-container))").count()
    page.close()
    assert not problems, "\n".join(problems)
    assert untypeset == 0, f"{untypeset} maths element(s) left as raw TeX"
