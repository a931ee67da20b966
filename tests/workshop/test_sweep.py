"""`kit workshop --sweep`: the grid is checked before anything runs, each set gets its own run folder, a failing set is
recorded with its notebook and cell, a finished set is not run again, and one table collects summary.json's numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import kit.workshop as workshop
from kit.core.errors import UserError
from kit.workshop import sweep


def test_values_split_on_commas_outside_brackets_and_parse_as_p_does():
    assert sweep.split_values('1,2,["a","b"],"x,y"') == ["1", "2", '["a","b"]', '"x,y"']
    grid = sweep.parse_sweeps(["seed=0,1", "amp=none,bf16", 'models=["hivit_workshop_32"],["cait_workshop_32"]'], {})
    assert grid["seed"] == [0, 1] and grid["amp"] == ["none", "bf16"]
    assert grid["models"] == [["hivit_workshop_32"], ["cait_workshop_32"]]  # JSON in brackets: a list, as -p reads it
    assert len(sweep.grid_sets(grid)) == 8 and sweep.grid_sets(grid)[1] == {
        "seed": 0, "amp": "none", "models": ["cait_workshop_32"]}
    sweep.check_sets(sweep.grid_sets(grid), {}, workshop.declared_parameters())  # every set is one a notebook takes
    assert sweep.set_name({"models": ["cait_workshop_32"]}) == "models-cait_workshop_32"
    assert sweep.set_name({"seed": 0, "lr": 0.1, "amp": "none"}) == "seed-0_lr-0.1_amp-none"


@pytest.mark.parametrize("specs, fixed, words", [
    (["epochs="], {}, "empty value"),
    (["epochs=1,,2"], {}, "empty value"),
    (["epochs"], {}, "NAME=V1,V2"),
    (["epochs=1", "epochs=2"], {}, "swept twice"),
    (["epochs=1,2"], {"epochs": 3}, "-p epochs"),
])
def test_malformed_sweeps_are_refused(specs, fixed, words):
    with pytest.raises(UserError, match=words):
        sweep.parse_sweeps(specs, fixed)


@pytest.mark.parametrize("argv, words", [
    (["--sweep", "epoch=1,2"], "'epoch'"),  # no notebook declares it
    (["--sweep", "epochs=1,-1"], "epochs = -1"),  # a value the notebooks refuse (their own check)
    (["--sweep", "epochs="], "empty value"),
    (["--sweep", "out_dir=a,b"], "--out"),
    (["--sweep", "epochs=1,2", "--jobs", "0"], "--jobs 0"),
])
def test_a_bad_sweep_is_one_line_exit_2_and_nothing_runs(tmp_path, capsys, monkeypatch, argv, words):
    import papermill

    from kit.cli import main

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    out = tmp_path / "runs" / "s"
    assert main(["workshop", "--out", str(out), "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err, err
    assert not out.exists()


TWO = ("00_setup_and_devices.ipynb", "04_training.ipynb")  # enough for the bookkeeping, and quicker to report


def fake_papermill(monkeypatch, ran: list, fail: set):
    """Papermill replaced: notebook 4 "trains" (val_acc1 = 90 + epochs + seed/10) and fails for the sets in ``fail``."""
    import papermill

    def execute(src, target, parameters, **kwargs):
        name, out = Path(src).name, parameters["out_dir"]
        if name == "04_training.ipynb":
            key = (parameters["epochs"], parameters["seed"])
            ran.append(key)
            if key in fail:
                raise papermill.PapermillExecutionError(7, 12, "x", "RuntimeError", "planted", ["long", "traceback"])
            acc = 90 + parameters["epochs"] + parameters["seed"] / 10
            workshop.save_json(out, "training", {"models": [{"model": "m", "recipe": "r", "val_acc1": acc,
                                                             "train_seconds": 1.0, "run_dir": "x"}], "quick": True})
        Path(target).write_text(Path(src).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", execute)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_sweep_runs_the_grid_records_a_failure_and_goes_on_then_resumes(tmp_path, monkeypatch, jobs):
    ran, fail, lines = [], {(2, 1)}, []
    fake_papermill(monkeypatch, ran, fail)
    out, grid = tmp_path / "s", {"epochs": [1, 2], "seed": [0, 1]}
    kw = dict(device="cpu", quick=True, data=tmp_path / "d", jobs=jobs, notebooks=TWO, log=lines.append)
    rows = sweep.run_sweep(out, grid, **kw)
    assert sorted(ran) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert [r["set"] for r in rows] == ["epochs-1_seed-0", "epochs-1_seed-1", "epochs-2_seed-0", "epochs-2_seed-1"]
    for r in rows:
        assert (out / "sweep" / r["set"] / "summary.json").exists() == (r["status"] == "done")
    table = list(csv.DictReader((out / "sweep.csv").open()))
    assert [t["status"] for t in table] == ["done", "done", "done", "failed"]
    assert table[3]["failed_in"] == "04_training.ipynb cell 12" and table[3]["m.val_acc1"] == ""
    assert [float(t["m.val_acc1"]) for t in table[:3]] == [91.0, 91.1, 92.0]  # from each set's summary.json
    assert table[0]["epochs"] == "1" and table[1]["seed"] == "1"
    failure = json.loads((out / "sweep" / "epochs-2_seed-1" / sweep.FAILURE).read_text())
    assert "planted" in failure["error"]
    page = (out / "index.html").read_text()
    assert "Sweep" in page and 'src="figures/sweep_metric.png"' in page and (out / "figures/sweep_metric.png").is_file()
    assert 'href="sweep/epochs-1_seed-0/index.html"' in page and 'class="fail"' in page
    assert not list(out.rglob(".*.tmp-*"))

    ran.clear(), fail.clear(), lines.clear()  # the same sweep again: only the failed set runs
    rows = sweep.run_sweep(out, grid, **kw)
    assert ran == [(2, 1)] and [r["status"] for r in rows] == ["done"] * 4
    assert sum("finished in an earlier sweep, not run again" in line for line in lines) == 3
    assert not (out / "sweep" / "epochs-2_seed-1" / sweep.FAILURE).exists()
    assert float(list(csv.DictReader((out / "sweep.csv").open()))[3]["m.val_acc1"]) == 92.1

    ran.clear()  # other fixed parameters: nothing counts as finished
    sweep.run_sweep(out, grid, parameters={"amp": "none"}, **kw)
    assert len(ran) == 4


def test_the_command_exits_1_when_a_set_failed_and_names_it(tmp_path, monkeypatch, capsys):
    from kit.cli import main

    fake_papermill(monkeypatch, [], {(1, 1)})
    out = tmp_path / "s"
    code = main(["workshop", "--out", str(out), "--device", "cpu", "--quick", "--data", str(tmp_path / "d"),
                 "--sweep", "epochs=1", "--sweep", "seed=0,1"])
    text = capsys.readouterr().out
    assert code == 1 and "1 of 2 set(s) done" in text and "failed: epochs-1_seed-1 in 04_training.ipynb cell 12" in text


def test_jobs_without_sweep_is_refused(tmp_path, capsys):
    from kit.cli import main

    assert main(["workshop", "--out", str(tmp_path / "w"), "--jobs", "2"]) == 2
    assert "--sweep" in capsys.readouterr().err and not (tmp_path / "w").exists()


@pytest.mark.slow
def test_a_real_sweep_over_the_quickest_notebook(tmp_path):
    """Papermill for real, two sets at once (threads), notebook 0 only; the table's numbers are summary.json's."""
    out = tmp_path / "s"
    rows = sweep.run_sweep(out, {"epochs": [1, 2]}, device="cpu", quick=True, data=tmp_path / "d", jobs=2,
                           metric="wall_seconds", notebooks=(workshop.NOTEBOOKS[0],), log=lambda line: None)
    assert [r["status"] for r in rows] == ["done", "done"], rows
    for r in rows:
        summary = json.loads((out / "sweep" / r["set"] / "summary.json").read_text())
        assert summary["parameters"]["epochs"] == r["epochs"] and r["wall_seconds"] == summary["wall_seconds"] > 0
        assert (out / "sweep" / r["set"] / "notebooks" / workshop.NOTEBOOKS[0]).exists()
    assert (out / "sweep.csv").read_text().startswith("set,epochs,status,failed_in,")
    assert (out / "figures" / "sweep_metric.png").stat().st_size > 1000
