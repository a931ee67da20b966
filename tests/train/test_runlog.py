"""kit.train.runlog: metrics.jsonl and the ModelZoo-format train.log, and cutting both back on resume."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

from kit.train.runlog import METRICS, TRAIN_LOG, RunLog, read_metrics, tcappdll_line

#: The regex of the ModelZoo's Demo/run_scripts/loss.py (two spaces before train.loss).
MODELZOO_LOSS = re.compile(r"rank : 0  train\.loss : ([\d\.e-]+)")


def record(step: int, loss: float = 2.5) -> dict:
    return {"step": step, "epoch": 0, "iter": step, "loss": loss, "lr": 1e-3, "images_per_s": 100.0, "time": 0.1,
            "grad_norm": None}


def test_tcappdll_line_is_the_modelzoo_layout():
    line = tcappdll_line(1, 7, 2.25, 96.5, when=datetime(2025, 5, 20, 13, 34, 46, 504606))
    assert line == ("TCAPPDLL 2025-05-20 13:34:46.504606 - Epoch: 1 Iteration: 7  rank : 0  train.loss : 2.25  "
                    "train.ips : 96.5 imgs/s")
    assert MODELZOO_LOSS.search(line).group(1) == "2.25"


def test_steps_and_evals_reach_both_files(tmp_path):
    log = RunLog(tmp_path)
    log.info("preamble\nsecond line")
    log.step(record(0, 2.5))
    log.step(record(1, math.nan))  # a non-finite loss is null in JSON (and still a line in train.log)
    log.eval({"split": "val", "epoch": 0, "step": 2, "acc1": 12.5, "loss": 2.0})
    log.close()
    records = read_metrics(tmp_path / METRICS)
    assert [r.get("split") for r in records] == [None, None, "val"]
    assert records[0]["loss"] == 2.5 and records[1]["loss"] is None and records[2]["acc1"] == 12.5
    text = (tmp_path / TRAIN_LOG).read_text().splitlines()
    assert text[:2] == ["preamble", "second line"]
    assert [float(m) for m in MODELZOO_LOSS.findall("\n".join(text))] == [2.5]  # the NaN line reads as no number
    assert "Iteration: 1" in text[3] and "nan" in text[3]
    assert text[4] == "val  epoch : 0  step : 2  acc1 : 12.5000  loss : 2.0000"


def test_resume_cuts_both_files_back_to_the_checkpoints_offsets(tmp_path):
    log = RunLog(tmp_path)
    log.step(record(0))
    log.step(record(1))
    saved = log.offsets()  # what a checkpoint holds
    log.step(record(2))  # written after the checkpoint: dropped on resume
    with open(tmp_path / METRICS, "ab") as f:
        f.write(b'{"step": 3, "lo')  # and a half-written line of a killed run
    log.close()
    assert saved[METRICS] == len(b"".join((tmp_path / METRICS).read_bytes().splitlines(keepends=True)[:2]))
    resumed = RunLog(tmp_path, resume_offsets=saved)
    resumed.step(record(2, 1.5))
    resumed.close()
    assert [(r["step"], r["loss"]) for r in read_metrics(tmp_path / METRICS)] == [(0, 2.5), (1, 2.5), (2, 1.5)]
    assert [float(m) for m in MODELZOO_LOSS.findall((tmp_path / TRAIN_LOG).read_text())] == [2.5, 2.5, 1.5]


def test_a_fresh_log_starts_the_files_afresh_and_a_disabled_one_writes_nothing(tmp_path):
    first = RunLog(tmp_path / "run")
    first.step(record(0))
    first.close()
    again = RunLog(tmp_path / "run")  # a new run into the folder (--overwrite): not appended to
    again.step(record(5))
    again.close()
    assert [r["step"] for r in read_metrics(tmp_path / "run" / METRICS)] == [5]
    off = RunLog(tmp_path / "other", enabled=False)  # every rank but 0
    off.info("x")
    off.step(record(0))
    off.close()
    assert not (tmp_path / "other").exists() and off.offsets() == {}
    assert json.loads((tmp_path / "run" / METRICS).read_text())["step"] == 5
