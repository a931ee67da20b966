"""Notebook 3's material without a card: the shipped scripts and their diff, and the helpers' CPU path.

What needs the card (the port against the CPU run, cuda_migrate against the port) is tests/emulator/test_port_lesson.py.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kit.workshop import port
from tests.helpers import assert_ranks_log_one_mean, grad_scaler_toy

REPO = Path(__file__).resolve().parents[2]
CUDA, SDAA, CPU = (port.script(k).read_text() for k in ("cuda", "sdaa", "cpu"))


@pytest.mark.parametrize("kind", sorted(port.SCRIPTS))
def test_each_script_is_python_with_the_length_of_a_lesson(kind):
    """DeiT's main.py/engine.py cut down: after the imports and the flags, 25-45 lines of training, read whole."""
    lines = port.code_lines(port.script(kind))
    ast.parse("\n".join(lines))
    start = next(i for i, line in enumerate(lines) if line.startswith("distributed = "))
    training = [line for line in lines[start:] if line.strip() and not line.lstrip().startswith("#")]
    assert 25 <= len(training) <= 45, len(training)


def test_the_cuda_script_is_written_for_cuda():
    for call in (".cuda(", "torch.cuda.amp.autocast()", "torch.cuda.amp.GradScaler()", "torch.cuda.synchronize()",
                 'init_process_group("nccl")', "torch.cuda.set_device("):
        assert call in CUDA, call


def test_the_hand_port_makes_the_modelzoo_edits_and_leaves_no_cuda():
    removed, added = port.changed_lines(port.script("cuda"), port.script("sdaa"))
    for line in ("import torch_sdaa  # noqa: F401  (the card: torch.sdaa, the sdaa device, tccl)",
                 "from torch.sdaa import amp", "scaler = amp.GradScaler()", "with amp.autocast():",
                 'dist.init_process_group("tccl")', 'parser.add_argument("--device", default="sdaa")',
                 "torch.sdaa.synchronize()"):
        assert line in added, line
    assert "torch.cuda.synchronize()" in removed and "with torch.cuda.amp.autocast():" in removed
    assert not re.search(r"torch\.cuda|\.cuda\(|nccl", SDAA)
    # the ModelZoo logger line (modelzoo.md §1.3), which kit compare reads
    assert re.search(r'f"TCAPPDLL \{datetime\.now\(\)\} - Epoch: \{epoch\} Iteration: \{i\}  rank : \{rank\}  '
                     r'train\.loss : "', SDAA)


def test_the_three_scripts_train_the_same_way():
    """Same seed, data, sampler, model and optimizer in all three: only the device, precision and logger differ."""
    for line in ("torch.manual_seed(0)", "sampler = torch.utils.data.DistributedSampler(dataset, world, rank, seed=0)",
                 "optimizer = torch.optim.AdamW(model.parameters(), lr=lr)", "sampler.set_epoch(epoch)",
                 "lr = args.lr * args.batch_size * world / 64"):
        assert all(line in text for text in (CUDA, SDAA, CPU)), line
    cpu_code = "\n".join(line.split("#")[0] for line in port.code_lines(port.script("cpu")))
    assert not re.search(r"cuda|sdaa|autocast|GradScaler|scaler", cpu_code)
    assert 'init_process_group("gloo")' in CPU


def test_the_diff_skips_the_docstring_and_is_shown_side_by_side():
    removed, added = port.changed_lines(port.script("cuda"), port.script("sdaa"))
    assert not any("ported to SDAA by hand" in line for line in added)  # the docstring says what, not how
    html = port.side_by_side(port.script("cuda"), port.script("sdaa"))
    assert "train_cuda.py" in html and "train_sdaa.py" in html and html.count("diff_chg") + html.count("diff_add") > 5
    # what the learner sees: the marks coloured and the code left-aligned without a style sheet (JupyterLab
    # right-aligns table cells, and make_table brings no CSS)
    assert html.count('<span class="diff_chg" style="background:') == html.count('<span class="diff_chg"')
    code_cells = html.count('<td nowrap="nowrap"')
    assert code_cells > 20 and html.count('style="text-align:left;font-family:monospace;white-space:pre"') == code_cells


def test_both_log_formats_are_read_per_rank_even_when_the_ranks_lines_meet():
    text = ("Epoch: [0]  [0/11]  lr: 0.002000  loss: 2.305161  rank 1 own loss: 2.306340\n"
            "TCAPPDLL 2026-12-06 05:40:04.18 - Epoch: 0 Iteration: 1  rank : 1  train.loss : 2.295578  "
            "train.ips : 118.4 imgs/s  own loss: 2.290680TCAPPDLL 2026-12-06 05:40:04.18 - Epoch: 0 Iteration: 1  "
            "rank : 0  train.loss : 2.295578  train.ips : 115.3 imgs/s  own loss: 2.300476\n")
    assert port.rank_losses(text) == {1: [(2.305161, 2.30634), (2.295578, 2.29068)], 0: [(2.295578, 2.300476)]}


def test_quiet_keeps_what_matters_and_drops_the_noise():
    stderr = ("*****************************************\n"
              "Setting OMP_NUM_THREADS environment variable for each process to be 1 in default\n"
              "[W1206 ...] Time stats are currently only collected for CPU and CUDA devices.\n"
              "x.py:8: UserWarning: The operator 'aten::gelu.out' falls back to the CPU (Triggered internally at "
              "/tmp/card.cpp:375.)\n"
              "  return F.gelu(input, approximate=self.approximate)\n"
              "RuntimeError: The operator 'aten::gelu.out' is not implemented on the SDAA device\n")
    assert port.quiet(stderr) == ["x.py:8: UserWarning: The operator 'aten::gelu.out' falls back to the CPU",
                                  "RuntimeError: The operator 'aten::gelu.out' is not implemented on the SDAA device"]
    run = port.ScriptRun("python x.py", 1, "", port.quiet(stderr))
    assert run.error == "RuntimeError: The operator 'aten::gelu.out' is not implemented on the SDAA device"


def test_no_card_is_asked_for_when_the_device_is_the_cpu():
    assert port.card("cpu") is None and port.card("cuda") is None


def test_the_grad_scaler_toy_skips_the_step_that_overflowed():
    half = port.half_precision("cpu")
    if half is None:
        assert not hasattr(torch.amp, "GradScaler")  # torch 2.2: the notebook says so instead
        return
    skipped = grad_scaler_toy(half, steps=4)
    assert skipped == [(False, 1024.0), (True, 512.0), (False, 512.0), (False, 512.0)]


def test_the_cpu_reference_runs_and_kit_compare_reads_its_log(digits_dir, tmp_path):
    run = port.run_script(port.script("cpu"), "--data-path", digits_dir, "--steps", "3", log=tmp_path / "cpu.log")
    assert run.returncode == 0, run.stderr[-5:]
    assert run.shown == f"python train_cpu.py --data-path {digits_dir} --steps 3"
    assert len(run.losses()) == 3 and (tmp_path / "cpu.log").read_text() == run.stdout
    code, report = port.kit_compare(tmp_path / "cpu.log", tmp_path / "cpu.log")
    assert code == 0 and "(deit-console, 3 points, steps 0..2)" in report


def test_the_cuda_script_fails_plainly_without_a_card(digits_dir, tmp_path):
    run = port.run_script(port.script("cuda"), "--data-path", digits_dir, "--steps", "1")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: the script runs")
    assert run.returncode != 0 and run.error.startswith(("RuntimeError", "AssertionError")), run.stderr[-3:]


@pytest.mark.slow
def test_torchrun_on_the_cpu_two_ranks_log_one_mean_of_two_losses(digits_dir):
    run = port.run_script(port.script("cpu"), "--data-path", digits_dir, "--steps", "3", nproc=2)
    assert run.returncode == 0, run.stderr[-5:]
    assert run.shown.startswith("torchrun --nproc-per-node 2 train_cpu.py")
    assert run.stdout.count("world size 2, batch 64 per process, 128 global, lr 0.002") == 2
    assert_ranks_log_one_mean(run.stdout, steps=3)
    assert run.stderr == []  # torchrun's banner set aside


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; uses Linux's death signal")
def test_torchruns_ranks_die_with_the_kernel_that_started_them(digits_dir, tmp_path):
    """torchrun starts each rank in a session of its own, out of reach of the kernel's process group: a kernel killed
    mid-run (SIGKILL) must take the launcher and both ranks with it, not leave them training."""
    from tests.core.test_lifetime import alive, gone_within
    from tests.workshop.test_workshop_faults import cmdline, descendants

    kernel = subprocess.Popen([sys.executable, "-c", (
        "import sys; from kit.workshop import port\n"
        f"port.run_script(port.script('cpu'), '--data-path', {str(digits_dir)!r}, '--steps', '100000', nproc=2)\n")],
        env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline, ranks, everything = time.monotonic() + 300, [], []
    try:
        while len(ranks) < 2 and time.monotonic() < deadline and kernel.poll() is None:
            time.sleep(0.2)
            everything = descendants(kernel.pid)
            ranks = [p for p in everything if "train_cpu.py" in cmdline(p)
                     and "torch.distributed.run" not in cmdline(p)]
        assert len(ranks) == 2, "the two ranks never started"
        kernel.kill()
        kernel.wait()
        assert gone_within(everything, 30) == [], [cmdline(p) for p in everything if alive(p)]
    finally:  # a failing test leaves nothing training
        for pid in [kernel.pid, *everything]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        kernel.wait()
