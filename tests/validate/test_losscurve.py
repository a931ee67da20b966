"""kit.validate (logformats, compare, report, plot, command): readers on the real ModelZoo logs and on small
synthetic files, the ModelZoo figures against hand arithmetic, the strict rule, alignment, options, and the
CLI's exit codes."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kit.cli
from kit.core.errors import UserError
from kit.validate import compare_curves, format_report, moving_average, plot_comparison
from kit.validate.logformats import read_curve

REPO = Path(__file__).resolve().parents[2]
LOGS = Path(kit.cli.__file__).resolve().parent / "assets" / "modelzoo_logs"
CAIT_CUDA = LOGS / "cait_s24_cuda.log"
CAIT_SDAA = LOGS / "cait_s24_sdaa.log"
CAIT_SDAA2 = LOGS / "cait_s24_sdaa_run2.log"
HIVIT_CUDA = LOGS / "hivit_base_cuda.log"
HIVIT_SCALARS = LOGS / "hivit_base_mmengine_scalars.json"


def naive_tcappdll(path: Path) -> list:
    """An independent reading of a TCAPPDLL log: split on the text, no regex shared with the kit."""
    losses = []
    for line in path.read_text().splitlines():
        if "train.loss" in line:
            losses.append(float(line.split("train.loss")[1].split(":")[1].split()[0]))
    return losses


def tcap(epoch, it, loss, rank=0, single_space=False) -> str:
    """One TCAPPDLL line: CaiT's spacing, or the HiViT hook's single-space ``rank: 0`` variant."""
    head = f"TCAPPDLL 2025-05-20 13:34:46.504606 - Epoch: {epoch} Iteration: {it}"
    if single_space:
        return f"{head} rank: {rank} train.loss : {loss} train.total_time : 4.6\n"
    return f"{head}  rank : {rank}  train.loss : {loss}  train.ips : 3.2 imgs/s\n"


def write_tcap(path: Path, losses, steps=None) -> Path:
    steps = range(len(losses)) if steps is None else steps
    path.write_text("".join(tcap(0, s, repr(float(v))) for s, v in zip(steps, losses)))
    return path


def run_cli(*args) -> int:
    return kit.cli.main(["compare", *map(str, args)])


# ---------------------------------------------------------------- readers on the real logs


def test_cait_logs_read_every_rank0_loss_line():
    for path in (CAIT_CUDA, CAIT_SDAA, CAIT_SDAA2):
        curve = read_curve(path)
        assert curve.format == "tcappdll" and curve.has_steps
        assert curve.losses.tolist() == naive_tcappdll(path)
        assert curve.steps.tolist() == list(range(101))
    sdaa = read_curve(CAIT_SDAA)  # 21 preamble lines come first, with numbers and '=' in them
    assert sdaa.lines[0] == 22 and sdaa.lines[-1] == 122


def test_hivit_single_space_variant_with_trailing_blank_line():
    assert HIVIT_CUDA.read_bytes().endswith(b"\n\n")
    curve = read_curve(HIVIT_CUDA)
    assert curve.format == "tcappdll"
    assert curve.losses.tolist() == naive_tcappdll(HIVIT_CUDA)
    assert len(curve) == 101 and curve.steps[-1] == 100


def test_mmengine_scalars_real_file():
    curve = read_curve(HIVIT_SCALARS)
    records = [json.loads(line) for line in HIVIT_SCALARS.read_text().splitlines()]
    assert curve.format == "mmengine-scalars"
    assert curve.steps.tolist() == [r["step"] for r in records]
    assert curve.losses.tolist() == [r["loss"] for r in records]


def test_cait_sdaa_against_cuda_matches_hand_arithmetic():
    ref, cand = naive_tcappdll(CAIT_CUDA), naive_tcappdll(CAIT_SDAA)
    n = min(len(ref), len(cand))
    mre = sum((c - r) / r for r, c in zip(ref[:n], cand[:n])) / n
    mae = sum(c - r for r, c in zip(ref[:n], cand[:n])) / n
    abs_mre = sum(abs(c - r) / r for r, c in zip(ref[:n], cand[:n])) / n
    cmp = compare_curves(read_curve(CAIT_CUDA), read_curve(CAIT_SDAA))
    assert cmp.n_points == cmp.legacy.n_points == n == 101
    assert cmp.legacy.mean_relative_error == pytest.approx(mre, rel=1e-12)
    assert cmp.legacy.mean_absolute_error == pytest.approx(mae, rel=1e-12)
    assert cmp.strict.mean_relative_error == pytest.approx(abs_mre, rel=1e-12)
    assert cmp.legacy.passed == (mre <= 0.05 or mae <= 0.0002)
    assert cmp.strict.passed == (abs_mre <= 0.05)
    report = format_report(cmp)
    assert f"MeanRelativeError: {mre}"[:28] in report and "MeanAbsoluteError: " in report
    assert re.search(r"^Rule,mean_(relative|absolute)_error ", report, re.M)


def test_two_identical_sdaa_runs_give_zero_error_and_pass(capsys):
    cmp = compare_curves(read_curve(CAIT_SDAA), read_curve(CAIT_SDAA2))
    assert cmp.legacy.mean_relative_error == cmp.legacy.mean_absolute_error == 0.0
    assert cmp.strict.mean_relative_error == cmp.strict.mean_absolute_error == 0.0
    assert cmp.passed and cmp.disagreement is None
    assert run_cli(CAIT_SDAA, CAIT_SDAA2) == 0
    assert "verdict: PASS" in capsys.readouterr().out


# ---------------------------------------------------------------- readers on synthetic files


def test_kit_train_log_iterations_restart_per_epoch_and_other_ranks_ignored(tmp_path):
    lines = [tcap(e, i, 5.0 - e - i / 10) for e in range(3) for i in range(4)]
    lines.insert(2, tcap(0, 1, 99.0, rank=1))  # another rank's line: not counted
    lines.insert(0, "some banner line with train.loss in it but no rank\n")
    path = tmp_path / "train.log"
    path.write_text("".join(lines))
    curve = read_curve(path)
    assert curve.steps.tolist() == list(range(12))  # epoch * 4 + iteration
    assert curve.losses.tolist() == [5.0 - e - i / 10 for e in range(3) for i in range(4)]
    # 1-based iteration counters give consecutive steps too
    path.write_text("".join(tcap(e, i, 1.0) for e in range(2) for i in range(1, 4)))
    assert read_curve(path).steps.tolist() == [1, 2, 3, 4, 5, 6]
    # a global counter (mmengine's runner.iter, as in the HiViT hook) is the step itself
    path.write_text("".join(tcap(e, i, 1.0, single_space=True) for e, i in [(0, 0), (0, 1), (1, 2), (1, 3)]))
    assert read_curve(path).steps.tolist() == [0, 1, 2, 3]


def test_tcappdll_without_step_fields_is_positional(tmp_path):
    path = tmp_path / "x.log"
    path.write_text("".join(f"TCAPPDLL now - rank : 0  train.loss : {v}\n" for v in (3.0, 2.0, 1.0)))
    curve = read_curve(path)
    assert not curve.has_steps and curve.losses.tolist() == [3.0, 2.0, 1.0]
    cmp = compare_curves(read_curve(CAIT_CUDA), curve)  # one log without steps: paired by position
    assert (cmp.alignment, cmp.n_points, cmp.n_missing) == ("position", 3, 98)
    with pytest.raises(UserError, match="no step numbers"):
        compare_curves(read_curve(CAIT_CUDA), curve, align="step")


def test_tcappdll_json_records(tmp_path):
    rows = [
        {"type": "METADATA", "metric": "train.loss", "metadata": {"unit": ""}},
        {"type": "LOG", "step": "PARAMETER", "data": {"lr": 0.1}},
        {"type": "LOG", "step": [0, 0], "data": "{'rank': 0, 'train.loss': 6.5, 'train.ips': 3.0}"},
        {"type": "LOG", "step": [0, 1], "data": {"rank": 0, "QA.loss": 6.25}},
        {"type": "LOG", "step": [0, 1], "data": {"rank": 1, "QA.loss": 9.0}},
        {"type": "LOG", "step": [0, 2], "data": '{"rank": 0, "train.loss": 6.0}'},
    ]
    path = tmp_path / "custom_sdaa.log"
    path.write_text("".join("TCAPPDLL " + json.dumps(r) + "\n" for r in rows))
    curve = read_curve(path)
    assert curve.format == "tcappdll-json"
    assert curve.steps.tolist() == [0, 1, 2] and curve.losses.tolist() == [6.5, 6.25, 6.0]


def test_mmengine_text_log(tmp_path):
    path = tmp_path / "20250609_134030.log"
    path.write_text(
        "2025/06/09 13:40:30 - mmengine - INFO - Config: dict(loss=dict(type='LabelSmoothLoss'))\n"
        "2025/06/09 13:48:00 - mmengine - INFO - Epoch(train)  [1][100/200]  base_lr: 1.1235e-06 lr: 1.1235e-06  "
        "eta: 1 day  time: 4.4450  data_time: 0.0047  memory: 9557  grad_norm: 12.7233  loss: 7.1269\n"
        "2025/06/09 13:56:00 - mmengine - INFO - Epoch(train)  [1][200/200]  base_lr: 1.2e-06 lr: 1.2e-06  "
        "eta: 1 day  time: 4.4420  data_time: 0.0036  memory: 9557  grad_norm: 12.6409  loss_cls: 3.0  loss: 7.0620\n"
        "2025/06/09 13:57:00 - mmengine - INFO - Epoch(val) [1][50/50]  accuracy/top1: 0.1000  loss: 6.9\n"
        "2025/06/09 14:05:00 - mmengine - INFO - Epoch(train)  [2][100/200]  lr: 1.3e-06  loss: 7.0001\n"
    )
    curve = read_curve(path)
    assert curve.format == "mmengine"
    assert curve.steps.tolist() == [100, 200, 300]  # (epoch - 1) * n + i, as scalars.json's step
    assert curve.losses.tolist() == [7.1269, 7.0620, 7.0001]
    path.write_text(
        "x - Iter(train) [ 100/1000]  lr: 1e-3  loss: 2.5\nx - Iter(train) [ 200/1000]  lr: 1e-3  loss: 2.25\n"
    )
    curve = read_curve(path)
    assert curve.steps.tolist() == [100, 200] and curve.losses.tolist() == [2.5, 2.25]


def test_deit_console_and_log_txt(tmp_path):
    console = tmp_path / "out.txt"
    console.write_text(
        "Start training for 2 epochs\n"
        "Epoch: [0]  [   0/1251]  eta: 1:00:00  lr: 0.000001  loss: 6.9123 (6.9123)  "
        "time: 3.1  data: 2.0  max mem: 9000\n"
        "Epoch: [0]  [  10/1251]  eta: 0:50:00  lr: 0.000001  loss: 6.9001 (6.9050)  "
        "time: 0.2  data: 0.0  max mem: 9000\n"
        "Epoch: [0] Total time: 0:04:10 (0.2000 s / it)\n"
        "Averaged stats: lr: 0.000001  loss: 6.9000 (6.9000)\n"
        "Test:  [ 0/50]  eta: 0:00:30  loss: 6.8 (6.8)  acc1: 0.1 (0.1)\n"
        "Epoch: [1]  [   0/1251]  eta: 0:50:00  lr: 0.000100  loss: 6.8000 (6.8000)  time: 0.2  data: 0.0\n"
    )
    curve = read_curve(console)
    assert curve.format == "deit-console"
    assert curve.steps.tolist() == [0, 10, 1251]
    assert curve.losses.tolist() == [6.9123, 6.9001, 6.8]  # the window median, not the average
    log = tmp_path / "log.txt"
    log.write_text(
        "".join(
            json.dumps(
                {"train_lr": 1e-6, "train_loss": v, "test_loss": 6.0, "test_acc1": 0.1, "epoch": e, "n_parameters": 5}
            )
            + "\n"
            for e, v in enumerate([6.9, 6.5, 6.1])
        )
    )
    curve = read_curve(log)
    assert curve.format == "deit-log" and curve.steps.tolist() == [0, 1, 2] and curve.losses.tolist() == [6.9, 6.5, 6.1]


def test_kit_metrics_jsonl_ignores_validation_records(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recs = [{"step": s, "epoch": 0, "loss": 2.0 - s / 10, "lr": 1e-3, "images_per_s": 100.0} for s in range(1, 4)]
    recs.insert(2, {"split": "val", "epoch": 0, "step": 2, "acc1": 10.0, "acc5": 50.0, "loss": 99.0})
    text = "".join(json.dumps(r) + "\n" for r in recs) + '{"step": 4, "epoch": 0, "lo'  # killed mid-write
    (run_dir / "metrics.jsonl").write_text(text)
    curve = read_curve(run_dir / "metrics.jsonl")
    assert curve.format == "kit-metrics"
    assert curve.steps.tolist() == [1, 2, 3] and curve.losses.tolist() == [1.9, 1.8, 1.7]
    assert read_curve(run_dir).path == str(run_dir / "metrics.jsonl")  # a run folder stands for it


def test_forced_format_and_unknown_format(tmp_path):
    assert read_curve(CAIT_CUDA, "tcappdll").format == "tcappdll"
    with pytest.raises(UserError, match="no training loss found"):
        read_curve(CAIT_CUDA, "mmengine")
    with pytest.raises(UserError, match=r"cait_s24_cuda.log:1: not valid JSON"):
        read_curve(CAIT_CUDA, "deit-log")
    with pytest.raises(UserError, match="unknown log format"):
        read_curve(CAIT_CUDA, "csv")


def test_duplicate_steps_keep_the_later_value(tmp_path):
    path = tmp_path / "resumed.log"
    path.write_text("".join(tcap(0, i, v) for i, v in [(0, 4.0), (1, 3.0), (2, 2.0), (1, 3.5), (2, 2.5), (3, 1.0)]))
    curve = read_curve(path)
    assert curve.steps.tolist() == [0, 1, 2, 3] and curve.losses.tolist() == [4.0, 3.5, 2.5, 1.0]
    assert curve.overwritten == 2 and curve.lines.tolist() == [1, 4, 5, 6]
    assert curve.raw.tolist() == [4.0, 3.0, 2.0, 3.5, 2.5, 1.0]  # what loss.py would read
    report = format_report(compare_curves(curve, curve))
    assert "2 step(s) logged more than once; the later value was kept" in report


# ---------------------------------------------------------------- the figures


def test_modelzoo_figures_by_hand_and_opposite_signs_cancel(tmp_path):
    ref = write_tcap(tmp_path / "ref.log", [2.0, 4.0, 5.0, 10.0])
    cand = write_tcap(tmp_path / "cand.log", [2.2, 3.6, 5.0])
    cmp = compare_curves(read_curve(ref), read_curve(cand))
    # by hand: relative errors +0.1, -0.1, 0; absolute errors +0.2, -0.4, 0; cut to 3 points
    assert cmp.legacy.n_points == 3 and cmp.n_missing == 1 and cmp.n_dropped == 0
    assert cmp.legacy.mean_relative_error == pytest.approx((0.1 - 0.1 + 0.0) / 3, abs=1e-12)
    assert cmp.legacy.mean_absolute_error == pytest.approx((0.2 - 0.4 + 0.0) / 3)
    assert cmp.strict.mean_relative_error == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert cmp.strict.mean_absolute_error == pytest.approx((0.2 + 0.4 + 0.0) / 3)
    assert cmp.legacy.passed and not cmp.strict.passed and not cmp.passed
    assert "errors of opposite sign cancel" in cmp.disagreement


def test_uniformly_7_percent_below_passes_modelzoo_and_fails_strict(tmp_path, capsys):
    losses = 7.0 - np.linspace(0, 0.5, 50) + 0.01 * np.sin(np.arange(50))
    ref = write_tcap(tmp_path / "cuda.log", losses)
    cand = write_tcap(tmp_path / "sdaa.log", losses * 0.93)
    cmp = compare_curves(read_curve(ref), read_curve(cand))
    assert cmp.legacy.mean_relative_error == pytest.approx(-0.07)
    assert cmp.strict.mean_relative_error == pytest.approx(0.07)
    assert cmp.legacy.passed and not cmp.strict.passed and not cmp.passed
    report = format_report(cmp)
    assert "The two verdicts disagree" in report and "below the reference" in report
    assert re.search(r"^pass$", report, re.M) and re.search(r"^fail$", report, re.M)
    assert "verdict: FAIL" in report
    assert run_cli(ref, cand) == 1
    assert run_cli(ref, cand, "--verdict", "legacy") == 0
    capsys.readouterr()


def test_step_alignment_with_gaps_counts_compared_missing_dropped(tmp_path):
    ref = write_tcap(tmp_path / "ref.log", np.full(10, 5.0), steps=range(10))
    cand_steps = [2, 3, 4, 6, 7, 8, 9, 10, 11, 12]
    cand = write_tcap(tmp_path / "cand.log", [5.0 + s / 100 for s in cand_steps], steps=cand_steps)
    cmp = compare_curves(read_curve(ref), read_curve(cand))
    assert cmp.alignment == "step"
    assert cmp.steps.tolist() == [2, 3, 4, 6, 7, 8, 9]
    assert (cmp.n_points, cmp.n_missing, cmp.n_dropped) == (7, 3, 3)
    expected = np.mean([s / 100 / 5.0 for s in [2, 3, 4, 6, 7, 8, 9]])
    assert cmp.strict.mean_relative_error == pytest.approx(expected)
    # loss.py pairs by position instead: point i with point i, all 10
    assert cmp.legacy.n_points == 10
    assert cmp.legacy.mean_relative_error == pytest.approx(np.mean([s / 100 / 5.0 for s in cand_steps]))
    d = cmp.to_dict()
    assert (d["n_points"], d["n_missing"], d["n_dropped"], d["alignment"]) == (7, 3, 3, "step")
    # forced positional pairing compares the first 10 of each
    pos = compare_curves(read_curve(ref), read_curve(cand), align="position")
    assert (pos.alignment, pos.n_points, pos.n_missing, pos.n_dropped) == ("position", 10, 0, 0)
    # no common step at all is bad input
    far = write_tcap(tmp_path / "far.log", [5.0, 5.0], steps=[50, 51])
    with pytest.raises(UserError, match="no step in common"):
        compare_curves(read_curve(ref), read_curve(far))


def test_skip_and_smooth(tmp_path):
    ref_values = np.full(20, 4.0)
    ref_values[:3] = 8.0  # a warm-up where the runs differ
    cand_values = 4.0 * (1 + 0.12 * (-1) ** np.arange(20))  # +-12 % around the reference
    ref = write_tcap(tmp_path / "ref.log", ref_values)
    cand = write_tcap(tmp_path / "cand.log", cand_values)
    r, c = read_curve(ref), read_curve(cand)
    plain = compare_curves(r, c)
    assert not plain.strict.passed
    skipped = compare_curves(r, c, skip=3)
    assert skipped.n_skipped == 3 and skipped.n_points == 17 and skipped.steps[0] == 3
    assert skipped.strict.mean_relative_error == pytest.approx(0.12)
    smoothed = compare_curves(r, c, skip=4, smooth=2)  # pairs of +12 % and -12 % average out
    assert smoothed.strict.passed and smoothed.strict.mean_relative_error == pytest.approx(0.12 / 16)
    # the legacy figures are loss.py's: never skipped nor smoothed
    assert smoothed.legacy.mean_relative_error == plain.legacy.mean_relative_error
    assert moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert moving_average(np.array([1.0, 3.0, 5.0]), 0).tolist() == [1.0, 3.0, 5.0]
    with pytest.raises(UserError, match="leaves nothing to compare"):
        compare_curves(r, c, skip=20)


def test_candidate_nan_fails_with_a_note(tmp_path):
    ref = write_tcap(tmp_path / "ref.log", [2.0, 2.0, 2.0])
    cand = tmp_path / "cand.log"
    cand.write_text(tcap(0, 0, "2.0") + tcap(0, 1, "nan") + tcap(0, 2, "2.0"))
    cmp = compare_curves(read_curve(ref), read_curve(cand))
    assert not cmp.passed and not cmp.legacy.passed
    assert f"{cand}:2: the candidate loss is nan" in format_report(cmp)
    assert cmp.to_dict()["strict"]["mean_relative_error"] is None


# ---------------------------------------------------------------- CLI, JSON, plot


def test_json_schema(capsys):
    assert run_cli(CAIT_CUDA, CAIT_SDAA, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["n_points"], int) and isinstance(out["passed"], bool)
    for rule in ("legacy", "strict"):
        assert {"mean_relative_error", "mean_absolute_error", "passed"} <= out[rule].keys()
        assert isinstance(out[rule]["mean_relative_error"], float) and isinstance(out[rule]["passed"], bool)
    assert out["passed"] == out["strict"]["passed"]
    assert out["strict"]["mean_relative_error"] >= abs(out["legacy"]["mean_relative_error"])


def test_plot_writes_a_png(tmp_path, capsys):
    png = tmp_path / "plots" / "loss.png"
    assert run_cli(CAIT_CUDA, CAIT_SDAA, "--plot", png, "--smooth", "5") == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {png}" in capsys.readouterr().out
    fig = plot_comparison(compare_curves(read_curve(CAIT_CUDA), read_curve(CAIT_SDAA)))
    assert len(fig.axes) == 2 and "ModelZoo rule: PASS" in fig.axes[0].get_title()
    from matplotlib.figure import Figure

    ax = Figure().subplots()  # a notebook's own axes: the curves only
    assert plot_comparison(compare_curves(read_curve(CAIT_CUDA), read_curve(CAIT_SDAA)), ax) is ax.figure
    assert len(ax.lines) == 4 and ax.get_xlabel() == "step"
    assert run_cli(CAIT_CUDA, CAIT_SDAA, "--plot", tmp_path / "loss.notaformat") == 2
    assert "loss.notaformat" in capsys.readouterr().err


def test_exit_code_2_names_the_file_and_line(tmp_path, capsys):
    missing = tmp_path / "nope.log"
    assert run_cli(missing, CAIT_SDAA) == 2
    err = capsys.readouterr().err
    assert f"kit compare: error: {missing}: no such file" in err and "Traceback" not in err

    empty = tmp_path / "empty.log"
    empty.write_text("nothing to see here\n")
    assert run_cli(CAIT_CUDA, empty) == 2
    assert f"{empty}: no training loss found" in capsys.readouterr().err

    nan_ref = tmp_path / "nan_ref.log"
    nan_ref.write_text("Ünïcode preamble line\n" + tcap(0, 0, "2.0") + tcap(0, 1, "nan") + tcap(0, 2, "2.0"))
    assert run_cli(nan_ref, CAIT_SDAA) == 2
    err = capsys.readouterr().err
    assert f"{nan_ref}:3: the reference loss is nan" in err

    zero_ref = write_tcap(tmp_path / "zero_ref.log", [2.0, 0.0, 2.0])
    assert run_cli(zero_ref, zero_ref) == 2
    assert f"{zero_ref}:2: the reference loss is zero" in capsys.readouterr().err

    garbled = tmp_path / "garbled.log"
    garbled.write_text(tcap(0, 0, "2.0") + tcap(0, 1, "2.0.1"))
    assert run_cli(garbled, CAIT_SDAA) == 2
    assert f"{garbled}:2: cannot read the loss '2.0.1'" in capsys.readouterr().err

    empty_run = tmp_path / "empty_run"
    empty_run.mkdir()
    assert run_cli(empty_run, CAIT_SDAA) == 2
    assert f"{empty_run}: is a folder with no metrics.jsonl or train.log" in capsys.readouterr().err

    bad_json = tmp_path / "metrics.jsonl"
    bad_json.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, loss}\n{"step": 3, "loss": 2.0}\n')
    assert run_cli(bad_json, CAIT_SDAA) == 2
    assert f"{bad_json}:2: not valid JSON" in capsys.readouterr().err


def test_python_m_kit_compare_in_a_subprocess(tmp_path):
    below = write_tcap(tmp_path / "below.log", np.array(naive_tcappdll(CAIT_CUDA)) * 0.93)
    env_path = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "compare", str(CAIT_CUDA), str(below)],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": env_path},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "The two verdicts disagree" in proc.stdout and "verdict: FAIL" in proc.stdout
    assert math.isclose(float(re.search(r"MeanRelativeError: (\S+)", proc.stdout).group(1)), -0.07, rel_tol=1e-6)


def test_trainer_metrics_with_iter_key_read_as_kit_metrics(tmp_path):
    """The trainer's records carry `iter` (as mmengine's do); validation records must never become points."""
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"step": i, "epoch": 0, "iter": i, "loss": 2.3 - 0.01 * i, "lr": 1e-3, "images_per_s": 500.0} for i in range(3)
    ]
    lines.append({"split": "val", "epoch": 0, "step": 3, "loss": 9.0, "acc1": 10.0, "acc5": 50.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    curve = read_curve(path)
    assert curve.format == "kit-metrics"
    assert curve.steps.tolist() == [0, 1, 2] and 9.0 not in curve.losses.tolist()


def test_two_run_folders_list_their_configuration_differences_first(tmp_path, capsys):
    """`kit compare RUN_A RUN_B` on two kit run folders says what differs in their set-up before the numbers."""

    def run_folder(name: str, lr: float, torch_version: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        lines = [{"step": i, "epoch": 0, "iter": i, "loss": 2.0 - 0.01 * i} for i in range(20)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        config = {
            "recipe": {"name": "x", "optimizer": {"lr": lr}, "run": {"out": str(folder)}},
            "derived": {"lr": lr, "global_batch": 64},
            "environment": {"torch": torch_version, "device": {}},
        }
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    a, b = run_folder("cuda", 1e-3, "2.4.0"), run_folder("sdaa", 2e-3, "2.2.0")
    assert kit.cli.main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("configuration differences (reference vs candidate):")
    assert "torch version: 2.4.0 vs 2.2.0" in out and "recipe optimizer.lr: 0.001 vs 0.002" in out
    assert "run.out" not in out  # where a run lives never changes its numbers
    assert kit.cli.main(["compare", str(a / "metrics.jsonl"), str(b), "--json"]) == 0
    assert "lr: 0.001 vs 0.002" in json.loads(capsys.readouterr().out)["config_differences"]
    assert kit.cli.main(["compare", str(a), str(a), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config_differences"] == []
