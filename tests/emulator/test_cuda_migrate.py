"""A CUDA-only training script runs unchanged on the emulated card with TORCH_SDAA_AUTOLOAD=cuda_migrate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("scripts") / "train_cuda.py"


def _run(*args: str, torchrun: bool = False) -> list[tuple[int, float, str]]:
    env = dict(os.environ, TORCH_SDAA_AUTOLOAD="cuda_migrate", OMP_NUM_THREADS="1")
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"] if torchrun else []
    proc = subprocess.run([sys.executable, *launcher, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [(int(s), float(v), d) for s, v, d in re.findall(r"step (\d+) loss ([\d.]+) on (\S+)", proc.stdout)]


def test_the_cuda_script_runs_unchanged_on_the_card():
    steps = _run("--steps", "20")
    assert [s for s, _, _ in steps] == list(range(20))
    assert {d for _, _, d in steps} == {"sdaa:0"}  # every "cuda" tensor went to the card
    assert steps[-1][1] < steps[0][1]  # and it trains


def test_the_cuda_script_with_amp_runs_in_the_cards_half_type():
    fp32, amp = _run("--steps", "20"), _run("--steps", "20", "--amp")
    assert {d for _, _, d in amp} == {"sdaa:0"}
    worst = max(abs(a - b) / a for (_, a, _), (_, b, _) in zip(fp32, amp))
    assert 0 < worst < 0.01  # float16 matmuls: close to fp32, not equal to it


@pytest.mark.slow
def test_the_cuda_script_under_torchrun_uses_two_cards_over_tccl():
    steps = _run("--steps", "5", torchrun=True)
    assert {d for _, _, d in steps} == {"sdaa:0", "sdaa:1"}
    by_step: dict = {}
    for s, loss, _ in steps:
        by_step.setdefault(s, []).append(loss)
    assert sorted(by_step) == list(range(5)) and all(len(v) == 2 for v in by_step.values())
