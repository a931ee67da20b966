"""kit.workshop.report: the run folder's index.html, built from a hand-made run folder (no notebook is executed)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from kit.workshop.report import report_html, write_report

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def summary(**changes) -> dict:
    base = {
        "device": "cpu", "wall_seconds": 61.4, "quick": True,
        "models": [
            {"model": "hivit_workshop_32", "recipe": "workshop_hivit", "val_acc1": 91.234, "train_seconds": 12.0},
            {"model": "<b>cait</b>", "recipe": "workshop_cait", "val_acc1": None, "train_seconds": None}],
        "validation": {"passed": False, "models": [
            {"model": "hivit_workshop_32", "strict": {"mean_relative_error": 0.01234, "passed": True},
             "legacy": {"passed": True}, "n_points": 150},
            {"model": "cait_workshop_32", "strict": {"mean_relative_error": 0.2, "passed": False},
             "legacy": {"passed": True}, "n_points": 150}]},
        "notebooks": [{"notebook": "00_setup.ipynb", "seconds": 3.2}, {"notebook": "01_gone.ipynb", "seconds": 1.0}],
        "parameters": {"epochs": 1, "device": "cpu"},
    }  # fmt: skip
    return base | changes


@pytest.fixture
def run_folder(tmp_path) -> Path:
    out = tmp_path / "run"
    (out / "notebooks").mkdir(parents=True)
    (out / "figures").mkdir()
    (out / "figures" / "loss_curve.png").write_bytes(PNG)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('hello from the kernel')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello from the kernel\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# Setup"), cell]
    nbformat.write(nb, out / "notebooks" / "00_setup.ipynb")  # 01_gone.ipynb was never written
    return out


def test_index_summarises_the_run_and_links_what_exists(run_folder):
    path = write_report(run_folder, summary())
    assert path == run_folder / "index.html"
    page = path.read_text()
    assert "<title>Workshop report: run</title>" in page
    assert "Device <code>cpu</code> · wall time 61 s · quick mode" in page
    assert '<td class="num">91.23</td>' in page and '<td class="num">12.0</td>' in page
    assert "&lt;b&gt;cait&lt;/b&gt;" in page and "<b>cait</b>" not in page  # names are escaped
    assert page.count('<td class="num">n/a</td>') == 2  # no accuracy, no time: said, not a crash
    assert 'Loss curves against the shipped reference curves: <span class="fail">fail</span>' in page
    assert '<td class="num">0.0123</td><td><span class="pass">pass</span></td>' in page
    assert '<a href="notebooks/00_setup.html">00_setup</a> — 3 s' in page  # rendered: linked as a page
    assert "<li>01_gone.ipynb — 1 s" in page and "01_gone.html" not in page  # not executed: named, not linked
    assert '<img src="figures/loss_curve.png" alt="loss_curve">' in page
    assert "&quot;epochs&quot;: 1" in page
    rendered = (run_folder / "notebooks" / "00_setup.html").read_text()
    assert "hello from the kernel" in rendered and "<html" in rendered  # the executed notebook with its outputs


def test_every_link_is_relative_and_stays_in_the_folder(run_folder):
    page = write_report(run_folder, summary()).read_text()
    links = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert links and all(not re.match(r"[a-z]+:|/", link) for link in links)
    existing = [link for link in links if link not in ("summary.json", "summary.md")]
    assert all((run_folder / link).resolve().is_relative_to(run_folder.resolve()) for link in existing)
    assert all((run_folder / link).exists() for link in existing if "01_gone" not in link)


def test_a_run_without_figures_or_verdicts_still_gets_a_page(tmp_path):
    out = tmp_path / "bare"
    out.mkdir()
    page = report_html(summary(quick=False, models=[], notebooks=[],
                               validation={"passed": None, "note": "notebook 5 wrote no validation.json"}), out)
    assert "No figures." in page and "quick mode" not in page
    assert "n/a" in page and "notebook 5 wrote no validation.json" in page
    write_report(out, summary(notebooks=[]))
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]  # written atomically: no temporary file left
