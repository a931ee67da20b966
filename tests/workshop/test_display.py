"""Figures reach the screen: what a notebook saves is what it shows, once, whatever made the figure.

These run real kernels (nbclient), because the bug they guard against lives in the kernel's display machinery:
a plain ``Figure`` displayed before the kernel's first pyplot figure came out as the text ``<Figure ...>``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _execute(cells: list[str], tmp_path: Path, monkeypatch) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    paths = (str(ROOT), os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))  # the kernel imports this checkout's kit
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def _images(cell) -> list[str]:
    return [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]


@pytest.mark.slow
def test_show_figure_shows_plain_and_pyplot_figures_once(tmp_path, monkeypatch):
    nb = _execute([
        "from matplotlib.figure import Figure\nimport kit.workshop.notebook\n"
        "fig = Figure(); fig.add_subplot().plot([1, 2])\nkit.workshop.show_figure(fig, 'out', 'plain')",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(); ax.plot([2, 1])\n"
        "kit.workshop.notebook.show_figure(fig, 'out', 'pyplot')",
    ], tmp_path, monkeypatch)
    for cell, name in zip(nb.cells, ("plain", "pyplot")):
        images = _images(cell)
        assert len(images) == 1, (name, cell.outputs)
        assert base64.b64decode(images[0]) == (tmp_path / "out" / "figures" / f"{name}.png").read_bytes()
        texts = [o.get("data", {}).get("text/plain", "") for o in cell.outputs if o.output_type == "execute_result"]
        assert not texts, texts  # no "<Figure ...>", no "PosixPath(...)"


@pytest.mark.slow
def test_live_plot_shows_its_final_figure_once(tmp_path, monkeypatch):
    run = ("from kit.workshop.liveplot import LiveLossPlot\n"
           "plot = LiveLossPlot(title='m', interactive={}, redraw_every=2)\n"
           "for step in range(1, 9):\n    plot.on_step({{'step': step, 'epoch': 0, 'loss': 3.0 / step}})\n"
           "plot.on_eval({{'acc1': 50.0}})\nfig = plot.finish('out', '{}')")
    nb = _execute([run.format(False, "headless"), run.format(True, "live")], tmp_path, monkeypatch)
    headless, live = nb.cells
    assert [base64.b64decode(i) for i in _images(headless)] == [(tmp_path / "out/figures/headless.png").read_bytes()]
    assert not _images(live)  # interactive: the figure is the widget's last frame, not a second image below it
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    frames = [o["data"]["image/png"] for w in state.values() if w["model_name"] == "OutputModel"
              for o in w["state"].get("outputs", []) if "image/png" in o.get("data", {})]
    assert [base64.b64decode(f) for f in frames] == [(tmp_path / "out/figures/live.png").read_bytes()]


def test_interact_draws_the_defaults_once_when_headless():
    from kit.workshop.notebook import interact

    calls = []
    interact(lambda ratio, k: calls.append((ratio, k)), False, ratio=(0.5, 0.0, 0.9, 0.05), k=(3, 1, 9, 1))
    assert calls == [(0.5, 3)]


def test_interact_builds_one_slider_per_control(monkeypatch):
    import ipywidgets

    from kit.workshop.notebook import interact

    seen = {}
    monkeypatch.setattr(ipywidgets, "interact", lambda fn, **kw: seen.update(kw))
    interact(lambda ratio, k: None, True, ratio=(0.5, 0.0, 0.9, 0.05), k=(3, 1, 9, 1))
    assert isinstance(seen["ratio"], ipywidgets.FloatSlider) and seen["ratio"].value == 0.5
    assert isinstance(seen["k"], ipywidgets.IntSlider) and (seen["k"].min, seen["k"].max) == (1, 9)
