"""The notebooks as a learner sees them: JupyterLab in Chromium, each notebook opened in order and Run All (quick).

For every notebook: no error and nothing on stderr, every figure it saves is on screen (as many loaded images
as files written), the run time, and a full-length screenshot in ``runs/browser/``. Notebook 4's live plot must
be a rendered widget whose image changes while the models train. Then the report of a quick ``kit workshop``
run, opened from the file system with the network cut off: every link and every image must load.

``make test-browser`` runs this (``pytest --browser tests/browser``); ``make test`` does not collect it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.workshop.assets import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "runs" / "browser"  # the folder the screenshots go to (tests/browser/conftest.py: the same)

#: What an output shows as text when the thing it should have drawn was not drawn.
UNRENDERED = re.compile(r"^(<Figure size|<matplotlib\.figure|Output\(|[HV]Box\(|<IPython\.core\.display)")
NOTEBOOK_TIMEOUT_S = 600

CURRENT = "window.kitNotebook"  # the notebook panel _open opened
IN_NOTEBOOK = f"[...{CURRENT}.content.node.querySelectorAll"
PROMPTS = f"{IN_NOTEBOOK}('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"
#: Images inside cell outputs (widgets' outputs included) that the browser has actually decoded.
IMAGES = f"{IN_NOTEBOOK}('.jp-Cell-outputArea img')].filter(i => i.complete && i.naturalWidth > 0)"
LIVE_FRAMES = f"{IN_NOTEBOOK}('.jp-Cell-outputArea .widget-output img')].map(i => i.src)"


def _figures(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")} if folder.is_dir() else {}


def _open(page, path: str) -> None:
    """Open ``path`` as the only notebook; the one before is saved (into the temporary copy) and its kernel shut
    down, as a learner moving on would, so that no idle kernel holds memory while the next one runs."""
    page.evaluate("""async (path) => {
        const app = window.jupyterapp, previous = window.kitNotebook;
        if (previous) {
            await previous.context.save();
            await previous.sessionContext.shutdown();
            previous.dispose();
        }
        const widget = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
        await widget.context.ready;
        await widget.sessionContext.ready;
        app.shell.activateById(widget.id);
        window.kitNotebook = widget;
    }""", path)
    page.wait_for_function(f"() => {CURRENT}.sessionContext.session?.kernel?.status === 'idle'", timeout=180_000)


def _run_all(page, on_poll=None) -> float:
    """Run All, then wait until no cell is queued or running and the kernel is idle; returns the seconds taken.

    The cell prompts are the truth: while a cell updates a widget the kernel can read "idle" although the cell
    still shows ``[*]``.
    """
    start = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(f"() => {PROMPTS}.some(t => t !== '[ ]:')", timeout=60_000)
    settled = 0
    while settled < 3:  # three quiet polls in a row: the last cell's outputs have arrived
        if time.monotonic() - start > NOTEBOOK_TIMEOUT_S:
            pytest.fail(f"still running after {NOTEBOOK_TIMEOUT_S} s: {page.evaluate(PROMPTS)}")
        if on_poll:
            on_poll()
        running = page.evaluate(f"() => {PROMPTS}.includes('[*]:')")
        idle = page.evaluate(f"() => {CURRENT}.sessionContext.session?.kernel?.status === 'idle'")
        settled = settled + 1 if idle and not running else 0
        time.sleep(0.5)
    return time.monotonic() - start - 1.0


def _problems(nb: dict) -> list[str]:
    """Errors, anything on stderr, and outputs that were drawn as text instead."""
    problems = []
    for index, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                problems.append(f"code cell {index}: {out['ename']}: {out['evalue']}")
            elif out["output_type"] == "stream" and out["name"] == "stderr":
                text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
                lines = [line for line in text.splitlines() if line.strip()]  # nothing is forgiven
                problems += [f"code cell {index}: stderr: {line}" for line in lines]
            else:
                plain = out.get("data", {}).get("text/plain", "")
                plain = "".join(plain) if isinstance(plain, list) else plain
                if set(out.get("data", {})) == {"text/plain"} and UNRENDERED.match(plain):  # text was all it had
                    problems.append(f"code cell {index}: shown as text: {plain[:80]}")
    return problems


#: Scrolls the notebook to its top and returns the page height that shows all of it (cells plus JupyterLab's bars).
TO_TOP = f"""() => {{
    const node = {CURRENT}.content.node, outer = node.querySelector('.jp-WindowedPanel-outer');
    outer.scrollTop = 0;
    return node.querySelector('.jp-WindowedPanel-inner').getBoundingClientRect().height
           + window.innerHeight - outer.clientHeight + 40;
}}"""


def _screenshot(page, name: str) -> Path:
    """The whole notebook in one picture: the file browser folded away, the viewport made as tall as the
    notebook, then put back."""
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.set_viewport_size({"width": 1280, "height": min(int(page.evaluate(TO_TOP)), 30_000)})
    page.wait_for_timeout(1500)
    page.evaluate(TO_TOP)
    path = SCREENSHOTS / f"{Path(name).stem}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})
    return path


def test_no_news_or_update_popup(lab_page):
    """lab-settings/overrides.json (used by make lab too) keeps JupyterLab from asking about news on first open."""
    lab_page.wait_for_timeout(3000)
    assert lab_page.get_by_text("news", exact=False).count() == 0


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean_and_shows_every_figure(name, lab_page, jupyterlab, timings, workshop):
    page = lab_page
    figures = jupyterlab.root / "runs" / "notebooks" / "figures"
    before = _figures(figures)
    _open(page, f"notebooks/{name}")
    frames: list[str] = []

    def watch_live_plot():
        frames.extend(src for src in page.evaluate(f"() => {LIVE_FRAMES}") if src not in frames)

    seconds = _run_all(page, on_poll=watch_live_plot if name.startswith("04") else None)
    timings[name] = round(seconds, 1)
    shot = _screenshot(page, name)
    nb = page.evaluate(f"() => {CURRENT}.content.model.toJSON()")
    prompts = page.evaluate(f"() => {PROMPTS}")

    assert not _problems(nb), "\n".join(_problems(nb))
    # The model's execution counts are the truth: a solution cell whose source is folded shows no prompt at all.
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    unexecuted = [i for i, c in enumerate(code) if not isinstance(c.get("execution_count"), int)]
    assert not unexecuted, f"code cells left unexecuted: {unexecuted} (prompts on screen: {prompts})"
    assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts if p), f"cells still running or queued: {prompts}"
    saved = {f for f, mtime in _figures(figures).items() if before.get(f) != mtime}
    shown = page.evaluate(f"() => {IMAGES}.length")
    assert saved, f"{name} saved no figure"
    assert shown == len(saved), f"{name}: {len(saved)} figures saved ({sorted(saved)}), {shown} images on screen"
    if name.startswith("04"):
        widgets = page.evaluate(f"() => {IN_NOTEBOOK}('.jp-Cell-outputArea .widget-output')].length")
        assert widgets >= 2, "the live loss plot is not a rendered widget (one per model)"
        assert len(frames) >= 3, f"the live plot's image changed {len(frames) - 1} time(s) during training"
    assert shot.stat().st_size > 0


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    """A quick headless workshop run (``make run ARGS=--quick``), started in the background with the first notebook.

    Most of a notebook's time in JupyterLab is spent outside the CPU-heavy training (kernels starting, imports,
    the page drawing), so the run for the report overlaps it rather than waiting for it. Yields a function
    that waits for the run and returns its index.html; a run still going at the end is stopped.
    """
    base = tmp_path_factory.mktemp("workshop")
    out = base / "runs" / "workshop"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    log = open(base / "workshop.log", "w+")
    start = time.monotonic()
    command = ["-m", "kit", "workshop", "--quick", "--device", "cpu", "--out", str(out), "--data", str(base / "data")]
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def finished(timings) -> Path:
        code = process.wait(timeout=900)
        timings["kit workshop --quick (alongside the notebooks)"] = round(time.monotonic() - start, 1)
        log.seek(0)
        assert code == 0, log.read()[-3000:]
        return out / "index.html"

    yield finished
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=60)
    log.close()


def test_report_opens_from_the_file_system_with_every_link_and_image(browser, workshop, timings):
    report = workshop(timings)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requested_online = []

    def offline(route):  # no server and no network: only file:// may load
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            requested_online.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    page.goto(report.as_uri())
    images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth])")
    links = page.evaluate("() => [...document.links].map(a => [a.getAttribute('href'), a.href])")
    page.screenshot(path=str(SCREENSHOTS / "index.png"), full_page=True)
    assert images and all(width for _, width in images), [src for src, width in images if not width]
    assert not requested_online, requested_online
    pages = [href for href, _ in links if href.endswith(".html")]
    assert len(pages) == len(NOTEBOOKS)
    for href, url in links:
        target = report.parent / href
        assert target.is_file(), href
        if href.endswith((".html", ".png")):
            page.goto(url)
            assert page.url == url
            if href.endswith(".html"):  # nbconvert's page: outputs, figures included, are inlined
                assert page.title() and page.locator(".jp-Notebook").count() == 1, href
                assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"), href
    context.close()
