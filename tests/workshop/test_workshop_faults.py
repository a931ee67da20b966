"""An interrupted workshop loses nothing and leaves nothing running: SIGKILL to `kit workshop`'s process group
during notebook 4 (while its resume exercise's `kit train` trains) and during notebook 6, each followed by
the same command into the same folder, which goes on and completes; Ctrl-C stops it in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kit.core.runlock import hold_run_folder
from tests.core.test_lifetime import alive, gone_within

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; uses Linux's death signal")]


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (kernels, their subprocesses, the watchdog), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [p for p in found if alive(p)]


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Workshop:
    """``kit workshop --quick`` in a session of its own, its output collected line by line."""

    def __init__(self, out: Path, data: Path):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-m", "kit", "workshop", "--quick", "--out", str(out),
                                      "--data", str(data)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, cwd=REPO, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def wait_for(self, condition, what: str, timeout: float = 400) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, f"the workshop ended before {what}:\n" + "".join(self.lines[-30:])
            assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n" + "".join(self.lines[-30:])
            time.sleep(0.02)

    def started(self, notebook: str) -> bool:
        return any(line.startswith(f"[workshop] {notebook} ...") for line in self.lines)

    def kill_group(self) -> list[int]:
        """SIGKILL the workshop's process group; the processes it had started, for checking."""
        left = descendants(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return left

    def finish(self, timeout: float = 600) -> str:
        self.proc.wait(timeout)
        self.reader.join(10)
        return "".join(self.lines)


def test_killed_during_notebooks_3_and_5_then_rerun_completes_and_leaves_nothing_running(digits_dir, tmp_path):
    out = tmp_path / "ws"
    exercise = out / "train" / "resume_exercise"

    first = Workshop(out, digits_dir)

    trainers: list[int] = []

    def exercise_started() -> bool:  # the exercise's `kit train` process exists
        trainers[:] = [p for p in descendants(first.proc.pid) if "resume_exercise" in cmdline(p)]
        return bool(trainers)

    first.wait_for(exercise_started, "the resume exercise's kit train")
    # it is training once it has opened its logs; the exercise kills it itself a few steps later: no time to lose
    first.wait_for(lambda: (exercise / "train.log").exists() or not alive(trainers[0]), "its train.log")
    assert alive(trainers[0]), "the exercise's run ended before the workshop could be killed"
    killed = first.kill_group()
    assert trainers[0] in killed and len(killed) >= 3  # the kernel, the exercise's `kit train`, the watchdog
    assert gone_within(killed) == [], [cmdline(p) for p in killed if alive(p)]

    second = Workshop(out, digits_dir)
    second.wait_for(lambda: second.started("06_debugging_a_port.ipynb"), "notebook 6")
    time.sleep(3)  # inside notebook 6
    killed = second.kill_group()
    assert gone_within(killed) == [], [cmdline(p) for p in killed if alive(p)]
    text = "".join(second.lines)
    for name in ("00_setup_and_devices", "01_dataset_prep", "02_model_anatomy", "03_port_it_yourself"):
        assert f"[workshop] {name}.ipynb finished in the interrupted run" in text
    assert "[workshop] 04_training.ipynb ..." in text  # the notebook it was in starts again

    third = Workshop(out, digits_dir)
    text = third.finish()
    assert third.proc.returncode == 0, text[-3000:]
    for name in ("00_setup_and_devices", "01_dataset_prep", "02_model_anatomy", "03_port_it_yourself", "04_training",
                 "05_loss_curve_validation"):
        assert f"[workshop] {name}.ipynb finished in the interrupted run" in text
    assert "[workshop] 06_debugging_a_port.ipynb done in" in text
    summary = json.loads((out / "summary.json").read_text())
    assert [n["notebook"] for n in summary["notebooks"]][-1] == "06_debugging_a_port.ipynb"
    assert len(summary["notebooks"]) == 7 and (out / "index.html").exists()
    assert not (out / "workshop_progress.json").exists()  # a completed run leaves no record: the next starts over
    assert descendants(third.proc.pid) == []


def test_ctrl_c_stops_the_kernel_releases_the_folder_and_says_what_finished(digits_dir, tmp_path):
    out = tmp_path / "ws"
    run = Workshop(out, digits_dir)
    run.wait_for(lambda: run.started("01_dataset_prep.ipynb"), "notebook 1")
    run.wait_for(lambda: any("ipykernel" in cmdline(p) for p in descendants(run.proc.pid)), "its kernel")
    kernel = [p for p in descendants(run.proc.pid) if "ipykernel" in cmdline(p)]
    os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends (to the foreground group)
    text = run.finish(timeout=60)
    assert run.proc.returncode == 130, text
    assert text.splitlines()[-1] == ("kit workshop: interrupted in 01_dataset_prep.ipynb; finished: "
                                     "00_setup_and_devices.ipynb; the same command goes on from there"), text
    assert "Traceback" not in text
    assert gone_within(kernel) == []
    with hold_run_folder(out, "test"):  # the lock is free
        pass
