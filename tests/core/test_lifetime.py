"""Nothing a workshop starts outlives it (kit.core.lifetime): a notebook's subprocess dies with its kernel, and
the runner's watchdog kills its kernels' process groups when the runner is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the death signal is Linux's")


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone_within(pids, seconds: float = 10.0) -> list[int]:
    """The pids still alive after ``seconds`` (empty: all gone)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


PARENT = """
import sys, time
from kit.core import lifetime
child = lifetime.popen([sys.executable, "-c", "import time; time.sleep(120)"])
plain = __import__("subprocess").Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, plain.pid, flush=True)
time.sleep(120)
"""


def test_popen_child_dies_with_its_parent_sigkill_included():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=ENV)
    child, plain = map(int, parent.stdout.readline().split())
    try:
        parent.kill()
        parent.wait()
        assert gone_within([child]) == []
        assert alive(plain)  # without the death signal an orphan lives on: what the issue saw
    finally:
        os.kill(plain, signal.SIGKILL)


RUNNER = """
import subprocess, time
from kit.core import lifetime
guard = lifetime.GroupWatchdog()
kernel = subprocess.Popen(["sleep", "120"], start_new_session=True)   # stands for a kernel in its own session
guard.register(kernel.pid)
print(kernel.pid, guard.proc.pid, flush=True)
time.sleep(120)
"""


def test_watchdog_kills_the_registered_groups_when_the_runner_is_sigkilled():
    runner = subprocess.Popen([sys.executable, "-c", RUNNER], stdout=subprocess.PIPE, text=True, env=ENV,
                              start_new_session=True)
    kernel, watchdog = map(int, runner.stdout.readline().split())
    assert alive(kernel) and alive(watchdog)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner's whole process group, as the issue did
    runner.wait()
    assert gone_within([kernel, watchdog]) == []


def test_a_cells_subprocess_dies_with_its_kernel_in_jupyter_too():
    """As in JupyterLab: a kernel started by jupyter_client (not by kit workshop) is SIGKILLed alone."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env=ENV, cwd=str(REPO))
    outputs: list = []
    try:
        reply = kc.execute_interactive(
            "import sys\nfrom kit.core import lifetime\n"
            "p = lifetime.popen([sys.executable, '-c', 'import time; time.sleep(120)'])\nprint(p.pid)",
            timeout=120, output_hook=lambda msg: outputs.append(msg))
        assert reply["content"]["status"] == "ok"
        child = int(next(m["content"]["text"] for m in outputs if m["msg_type"] == "stream"))
        assert alive(child)
        os.kill(km.provisioner.process.pid, signal.SIGKILL)  # the kernel alone, not its group
        assert gone_within([child]) == []
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

