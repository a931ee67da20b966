"""What the browser tests stand on: the system's Chromium, a JupyterLab server of our own, and one page on it.

Nothing is installed or downloaded while the tests run. Playwright (the ``browser`` extra, which ``make
test-browser`` installs) drives the Chromium the machine already has -- Playwright's own browser download
needs the internet, which a CI box or a workshop room may not have. The browser is found as ``$KIT_CHROMIUM``,
else ``chromium`` (Debian: ``apt-get install chromium``) or Google Chrome on the PATH, else the macOS apps.

The server is started the way ``make lab`` starts it (the same ``lab-settings/`` overrides: no news pop-up),
but on a free port of 127.0.0.1 with a token of its own, on copies of the notebooks in a temporary folder
laid out like the repository (``notebooks/``, and ``data/`` and ``runs/`` beside it) and made as ``make lab`` makes a
learner's (solutions held back on Run All: ``kit.workshop.solutions``), so that the tests never
write into the clone except their screenshots. Its environment turns quick mode on (``KIT_QUICK=1``), puts this
checkout first on the kernels' ``PYTHONPATH``, and keeps Jupyter and IPython away from the user's own settings.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.workshop import solutions

ROOT = Path(__file__).resolve().parents[2]
#: Where the screenshots (one per notebook, and the report) and timings.json go.
SCREENSHOTS = ROOT / "runs" / "browser"

MAC_BROWSERS = ("/Applications/Chromium.app/Contents/MacOS/Chromium",
                "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
#: Quiet, reproducible headless Chromium: no background downloads, updates, sync or first-run UI, no GPU.
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--disable-gpu"]


def chromium_path() -> str:
    for candidate in (os.environ.get("KIT_CHROMIUM"), *map(shutil.which, ("chromium", "chromium-browser",
                      "google-chrome", "google-chrome-stable")), *MAC_BROWSERS):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("no Chromium found: apt-get install -y chromium (Debian), or set KIT_CHROMIUM to the browser's "
                "executable (macOS: /Applications/Chromium.app/Contents/MacOS/Chromium)", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None


def _settings(folder: Path) -> Path:
    """User settings for the test's JupyterLab: every cell attached to the page, so the screenshots and the
    counts see the whole notebook (JupyterLab otherwise may skip drawing cells out of view)."""
    tracker = folder / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    return folder


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for notebook in (root / "notebooks").glob("*.ipynb"):  # the learner's copies, as `make lab` makes them
        solutions.lab_copy(notebook, notebook)
    jupyter = root / ".jupyter"
    env = dict(os.environ, KIT_QUICK="1", PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT),
               os.environ.get("PYTHONPATH")))), JUPYTER_CONFIG_DIR=str(jupyter / "config"),
               JUPYTER_DATA_DIR=str(jupyter / "data"), JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
               IPYTHONDIR=str(jupyter / "ipython"), JUPYTERLAB_SETTINGS_DIR=str(_settings(jupyter / "settings")),
               JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"))
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", f"--LabApp.app_settings_dir={ROOT / 'lab-settings'}",
               "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(root / "jupyterlab.log", "w")
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, process)
    deadline = time.monotonic() + 180
    while True:
        try:
            lab.api("/api/status")
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"JupyterLab did not start:\n{(root / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield lab
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def timings():
    """``{what: seconds}``, written to timings.json (and printed) when the session ends."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / "timings.json"
    path.unlink(missing_ok=True)
    seconds: dict[str, float] = {}
    yield seconds
    path.write_text(json.dumps(seconds, indent=1) + "\n")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])  # Chromium's sandbox refuses root
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def lab_page(browser, jupyterlab):
    """One JupyterLab page for all the notebooks, opened as a learner opens it (the URL with the token)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{jupyterlab.url}/lab?reset&token={jupyterlab.token}")
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    yield page
    page.close()


def pytest_terminal_summary(terminalreporter):
    path = SCREENSHOTS / "timings.json"
    if path.exists():
        terminalreporter.write_line(f"browser tests: screenshots and timings in {SCREENSHOTS}")
        for name, seconds in json.loads(path.read_text()).items():
            terminalreporter.write_line(f"  {name:48} {seconds:7.1f} s")
