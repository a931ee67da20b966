"""Helpers of the emulated-card tests: the kit's CLI in a subprocess, and what a run folder holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["run_kit", "step_losses", "records", "stderr_lines"]


def run_kit(*args: str, env: dict | None = None, cwd: Path | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m kit ARGS`` (the learner's command) and return the finished process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "kit", *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout)


def step_losses(run: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "step" in r
            and "loss" in r and r.get("split") is None]


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """What stderr says in lines, without the progress bar's frames (tqdm) and torch's CUDA_HOME notice (logged by
    torch itself on CUDA builds without a GPU)."""
    lines = re.split(r"[\r\n]+", proc.stderr)
    return [line for line in lines if line.strip() and not re.search(r"\d+%\|", line)
            and "No CUDA runtime is found" not in line]
