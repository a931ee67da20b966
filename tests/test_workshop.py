"""The headless workshop: `kit workshop --quick` runs every notebook and writes the promised summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kit import workshop

ROOT = Path(__file__).resolve().parents[1]


def test_resolve_quick(monkeypatch):
    monkeypatch.delenv(workshop.QUICK_ENV, raising=False)
    assert workshop.resolve_quick(None) is False
    monkeypatch.setenv(workshop.QUICK_ENV, "1")
    assert workshop.resolve_quick(None) is True
    assert workshop.resolve_quick(False) is False


def test_every_notebook_has_a_parameters_cell_and_a_figure_and_exercises():
    import nbformat

    for name in workshop.NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        for param in ("device", "models", "epochs", "data_dir", "out_dir", "quick"):
            assert f"\n{param} =" in "\n" + tagged[0].source, (name, param)
        text = "\n".join(c.source for c in nb.cells)
        assert "What you will learn" in nb.cells[0].source, name
        assert "save_figure(" in text, name
        assert "Exercises" in nb.cells[-1].source and "Summary" in nb.cells[-1].source, name
        assert "assert " in text, f"{name} asserts none of its results"


def test_summary_schema_from_notebook_results(tmp_path):
    workshop.save_json(tmp_path, "device", {"device": "cpu"})
    workshop.save_json(tmp_path, "training", {"models": [{"model": "m", "recipe": "r", "val_acc1": 97.5, "train_seconds": 12.0, "run_dir": "x"}], "quick": False})
    workshop.save_json(tmp_path, "validation", {"passed": True, "models": []})
    bug = {"bug": "b", "modelzoo": "pass", "strict": "fail", "noise": "fail"}
    workshop.save_json(tmp_path, "debugging", {"steps": 80, "bugs": [bug | {"seconds": 1.0}]})
    s = workshop.summarise(tmp_path, 3.5, [{"notebook": "00_x.ipynb", "seconds": 1.25}])
    assert s["debugging"] == [bug]
    assert s["device"] == "cpu" and s["wall_seconds"] == 3.5 and s["validation"]["passed"] is True
    assert {"model", "recipe", "val_acc1", "train_seconds"} <= set(s["models"][0])
    assert s["notebooks"] == [{"notebook": "00_x.ipynb", "seconds": 1.25}]
    text = workshop.summary_markdown(s, tmp_path)
    assert "| m | r | 97.50 | 12.0 |" in text and "00_x.ipynb 1 s" in text and "| b | pass | fail | fail |" in text


@pytest.mark.slow
def test_kit_workshop_quick_end_to_end(tmp_path):
    out, data = tmp_path / "runs" / "ci", tmp_path / "data"
    r = subprocess.run(
        [sys.executable, "-m", "kit", "workshop", "--quick", "--device", "cpu", "--out", str(out), "--data", str(data)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= {"models", "validation", "device", "wall_seconds"}
    assert summary["device"] == "cpu" and summary["wall_seconds"] > 0
    assert [m["model"] for m in summary["models"]] == ["hivit_workshop_32", "cait_workshop_32"]
    for m in summary["models"]:
        assert set(m) >= {"model", "recipe", "val_acc1", "train_seconds"}
        assert 0 <= m["val_acc1"] <= 100 and m["train_seconds"] > 0
        run_dir = Path(m["run_dir"])
        assert (run_dir / "metrics.jsonl").exists() and (run_dir / "train.log").exists()
    assert isinstance(summary["validation"]["passed"], bool)
    assert summary["debugging"] and all(set(b) == {"bug", "modelzoo", "strict", "noise"} for b in summary["debugging"])
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == sorted(workshop.NOTEBOOKS)
    assert [n["notebook"] for n in summary["notebooks"]] == list(workshop.NOTEBOOKS)
    assert all(n["seconds"] > 0 for n in summary["notebooks"])
    assert len(list((out / "figures").glob("*.png"))) >= len(workshop.NOTEBOOKS)
    assert (out / "summary.md").read_text().startswith("# Workshop summary")
