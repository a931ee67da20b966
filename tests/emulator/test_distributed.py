"""torchrun on the emulated cards: two processes, one card each, DDP over ``tccl`` — and the same losses as the
kit's two-process CPU run over gloo at the same global batch (tccl runs gloo's algorithms on the cards' bytes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from card_helpers import records, step_losses

pytestmark = pytest.mark.slow


def _torchrun(digits, out, device):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "kit",
           "train", "--recipe", "workshop_hivit", "--data", str(digits), "--out", str(out), "--device", device,
           "--max-steps", "8"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_torchrun_two_cards_over_tccl_matches_two_cpu_processes_over_gloo(digits, tmp_path):
    _torchrun(digits, tmp_path / "cpu", "cpu")
    _torchrun(digits, tmp_path / "sdaa", "sdaa")
    log = (tmp_path / "sdaa" / "train.log").read_text()
    assert "2 process(es), backend tccl" in log
    assert "global batch 128 (64 x 2 process" in log
    cpu, card = step_losses(tmp_path / "cpu"), step_losses(tmp_path / "sdaa")
    assert len(card) == 8 and card == cpu
    assert all(r.get("loss") is not None for r in records(tmp_path / "sdaa") if "step" in r)
