"""The headless workshop: `kit workshop --quick` runs every notebook and writes the promised summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import kit.workshop as workshop

ROOT = Path(__file__).resolve().parents[2]


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
        assert "show_figure(" in text, name  # saved and displayed (kit.workshop.notebook.show_figure)
        lesson = [c for c in nb.cells if "solution" not in c.metadata.get("tags", [])]  # the solutions come last
        assert "Exercises" in lesson[-1].source and "Summary" in lesson[-1].source, name
        assert "assert " in text, f"{name} asserts none of its results"


def test_summary_schema_from_notebook_results(tmp_path):
    workshop.save_json(tmp_path, "device", {"device": "cpu"})
    model = {"model": "m", "recipe": "r", "val_acc1": 97.5, "train_seconds": 12.0, "run_dir": "x"}
    workshop.save_json(tmp_path, "training", {"models": [model], "quick": False})
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
        [
            sys.executable,
            "-m",
            "kit",
            "workshop",
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--data",
            str(data),
            "-p",
            "amp",
            "none",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # what the teacher reads: the progress lines and the result, no kernel plumbing (ipykernel's TCP warning)
    assert not [line for line in r.stderr.splitlines() if "IPKernelApp" in line], r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= {"models", "validation", "device", "wall_seconds"}
    assert summary["device"] == "cpu" and summary["wall_seconds"] > 0
    assert [m["model"] for m in summary["models"]] == ["hivit_workshop_32", "cait_workshop_32"]
    for m in summary["models"]:
        assert set(m) >= {"model", "recipe", "val_acc1", "train_seconds"}
        assert 0 <= m["val_acc1"] <= 100 and m["train_seconds"] > 0
        run_dir = Path(m["run_dir"])
        assert (run_dir / "metrics.jsonl").exists() and (run_dir / "train.log").exists()
        # no -p amp given: the recipe's precision (fp32), whatever the notebook demonstrates about --amp
        config = json.loads((run_dir / "config.json").read_text())
        precision = config["derived"]["precision"]
        assert config["recipe"]["amp"] == "none" and precision.startswith("fp32"), precision
    assert isinstance(summary["validation"]["passed"], bool)
    assert summary["debugging"] and all(set(b) == {"bug", "modelzoo", "strict", "noise"} for b in summary["debugging"])
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == sorted(workshop.NOTEBOOKS)
    assert [n["notebook"] for n in summary["notebooks"]] == list(workshop.NOTEBOOKS)
    assert all(n["seconds"] > 0 for n in summary["notebooks"])
    assert len(list((out / "figures").glob("*.png"))) >= len(workshop.NOTEBOOKS)
    assert (out / "summary.md").read_text().startswith("# Workshop summary")
    assert summary["parameters"]["amp"] == "none" and summary["parameters"]["quick"] is True
    # every figure a notebook saved is also shown in it (kit.workshop.notebook.show_figure): as many images as files
    executed = [json.loads((out / "notebooks" / name).read_text()) for name in workshop.NOTEBOOKS]
    cells = [cell for nb in executed for cell in nb["cells"]]
    images = sum("image/png" in output.get("data", {}) for cell in cells for output in cell.get("outputs", []))
    assert images == len(list((out / "figures").glob("*.png")))
    assert_report_links_resolve(out)


def test_parameter_values_parse_as_papermill_parses_them(monkeypatch):
    from papermill.cli import _resolve_type

    texts = ("True", "False", "None", "5", "-3", "0.5", "1e-3", "true", "abc", "[1, 2")
    expected = [_resolve_type(text) for text in texts]
    assert [workshop.parse_parameter(text) for text in texts] == expected
    assert workshop.parse_parameter("5") == 5 and workshop.parse_parameter("true") == "true"
    # papermill's -p has no lists; a notebook parameter such as `models` is one: JSON in brackets is read as JSON
    assert workshop.parse_parameter('["hivit_workshop_32"]') == ["hivit_workshop_32"]
    assert workshop.parse_parameter('{"a": 1}') == {"a": 1}
    monkeypatch.setitem(sys.modules, "papermill.cli", None)  # a papermill without _resolve_type: the spelled-out rules
    assert [workshop.parse_parameter(text) for text in texts] == expected


def test_a_list_parameter_from_the_command_line_reaches_the_check_as_a_list():
    workshop.check_parameters({"models": workshop.parse_parameter('["cait_workshop_32"]')},
                              workshop.declared_parameters())


def test_every_notebook_parameter_can_be_set_and_an_unknown_one_is_exit_2(tmp_path, capsys):
    from kit.cli import main

    declared = workshop.declared_parameters()
    assert "amp" in declared["04_training.ipynb"] and "imagenet_archives" in declared["01_dataset_prep.ipynb"]
    out = tmp_path / "runs" / "w"
    assert main(["workshop", "--out", str(out), "-p", "epochs", "2", "-p", "epoch", "5"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'epoch'" in err and "Traceback" not in err, err
    assert main(["workshop", "--out", str(out), "-p", "out_dir", "elsewhere"]) == 2
    assert "--out" in capsys.readouterr().err
    assert not out.exists()  # refused before anything ran


def test_parameters_reach_the_notebooks_that_declare_them_and_summary_json(tmp_path, monkeypatch):
    """Papermill replaced by a recorder: what each notebook would receive, and what summary.json records."""
    import papermill

    received = {}

    def execute(src, target, parameters, **kwargs):
        received[Path(src).name] = parameters
        Path(target).write_text(Path(src).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    overrides = {"epochs": 2, "amp": "true", "imagenet_out": None}
    summary = workshop.run_workshop(
        tmp_path / "w", device="cpu", quick=True, data=tmp_path / "d", parameters=overrides, log=lambda line: None
    )
    assert list(received) == list(workshop.NOTEBOOKS)
    assert received["04_training.ipynb"]["amp"] == "true" and "amp" not in received["00_setup_and_devices.ipynb"]
    assert "imagenet_out" in received["01_dataset_prep.ipynb"] and "imagenet_out" not in received["04_training.ipynb"]
    assert all(p["epochs"] == 2 and p["quick"] is True and p["device"] == "cpu" for p in received.values())
    recorded = json.loads((tmp_path / "w" / "summary.json").read_text())["parameters"]
    assert recorded == summary["parameters"] and recorded["epochs"] == 2 and recorded["amp"] == "true"
    assert recorded["out_dir"] == str((tmp_path / "w").resolve())


def assert_report_links_resolve(out: Path) -> None:
    """index.html links only to files inside the run folder that exist, and to every executed notebook as HTML."""
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.targets = []

        def handle_starttag(self, tag, attrs):
            self.targets += [value for key, value in attrs if key in ("href", "src")]

    parser = Links()
    parser.feed((out / "index.html").read_text())
    assert parser.targets
    for target in parser.targets:
        assert "://" not in target and not target.startswith("/"), target  # opens from file:// anywhere
        assert (out / target).is_file(), target
    pages = {f"notebooks/{Path(name).stem}.html" for name in workshop.NOTEBOOKS}
    assert pages <= set(parser.targets)
    assert {f"figures/{p.name}" for p in (out / "figures").glob("*.png")} <= set(parser.targets)
    assert not list(out.rglob(".*.tmp-*")), "a half-written file was left behind"


def test_report_links_every_notebook_page_and_figure(tmp_path, monkeypatch):
    """index.html from a run whose notebooks are copies of the sources (papermill replaced: no kernels)."""
    import matplotlib.figure
    import papermill

    def execute(src, target, parameters, **kwargs):
        Path(target).write_text(Path(src).read_text())
        fig = matplotlib.figure.Figure(figsize=(2, 1))
        fig.add_subplot().plot([0, 1])
        workshop.save_figure(fig, parameters["out_dir"], Path(src).stem[:2] + "_figure")

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    workshop.save_json(
        tmp_path / "w",
        "validation",
        {
            "passed": False,
            "models": [
                {
                    "model": "m<1>",
                    "n_points": 3,
                    "strict": {"mean_relative_error": 0.5, "passed": False},
                    "legacy": {"passed": True},
                }
            ],
        },
    )
    workshop.run_workshop(tmp_path / "w", device="cpu", quick=True, data=tmp_path / "d", log=lambda line: None)
    out = tmp_path / "w"
    assert_report_links_resolve(out)
    text = (out / "index.html").read_text()
    assert "m&lt;1&gt;" in text and "0.5000" in text and 'class="fail"' in text and 'class="pass"' in text
    for name in workshop.NOTEBOOKS:
        assert "<html" in (out / "notebooks" / name).with_suffix(".html").read_text()[:500].lower()


def test_an_interrupted_workshop_goes_on_where_it_stopped(tmp_path, monkeypatch):
    """Papermill replaced: Ctrl-C in notebook 4 says what finished; the same run again skips notebooks 0-3 and
    says so; other parameters start over; a completed run leaves no record."""
    import papermill

    ran, interrupt = [], {"04_training.ipynb"}

    def execute(src, target, parameters, **kwargs):
        assert "kernel_manager_class" in kwargs  # the kernel's process group belongs to the run's watchdog
        if Path(src).name in interrupt:
            raise KeyboardInterrupt
        ran.append(Path(src).name)
        Path(target).write_text(Path(src).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    out, lines = tmp_path / "w", []
    with pytest.raises(workshop.WorkshopInterrupted) as info:
        workshop.run_workshop(out, device="cpu", quick=True, data=tmp_path / "d", log=lines.append)
    assert str(info.value) == ("interrupted in 04_training.ipynb; finished: 00_setup_and_devices.ipynb, "
                               "01_dataset_prep.ipynb, 02_model_anatomy.ipynb, 03_port_it_yourself.ipynb; "
                               "the same command goes on from there")
    assert ran == list(workshop.NOTEBOOKS[:4])

    ran.clear(), interrupt.clear()
    summary = workshop.run_workshop(out, device="cpu", quick=True, data=tmp_path / "d", log=lines.append)
    assert ran == list(workshop.NOTEBOOKS[4:])
    assert [f"[workshop] {name} finished in the interrupted run" in "\n".join(lines) for name in
            workshop.NOTEBOOKS[:4]] == [True] * 4
    assert [n["notebook"] for n in summary["notebooks"]] == list(workshop.NOTEBOOKS)
    assert not (out / workshop.ProgressRecord.NAME).exists()

    ran.clear(), interrupt.add("01_dataset_prep.ipynb")
    with pytest.raises(workshop.WorkshopInterrupted):
        workshop.run_workshop(out, device="cpu", quick=True, data=tmp_path / "d", log=lines.append)
    ran.clear(), interrupt.clear(), lines.clear()
    workshop.run_workshop(out, device="cpu", quick=False, data=tmp_path / "d", log=lines.append)
    assert ran == list(workshop.NOTEBOOKS) and "holds an interrupted run with other parameters: starting over" in \
        "\n".join(lines)
