"""One writer per folder (kit.core.runlock): ``kit train``, ``kit workshop`` and ``python -m data_prep`` refuse a
folder that another live process holds, at once, with exit 2 and one line naming the folder and the holder;
a holder that was killed holds nothing.

Nothing here waits on a clock: the other processes say on stdout when they hold the folder, and start or
let go when the test writes a line to their stdin or closes it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from kit.core.atomic import atomic_dir
from kit.core.errors import UserError
from kit.core.runlock import RunFolderBusy, hold_run_folder
from tests.helpers import REPO, log_iterations, one_thread, step_losses, subprocess_env, tiny_recipe  # noqa: F401

#: Holds argv[1] (as command argv[2]) until its stdin is closed.
HOLDER = """
import sys
from kit.core.runlock import hold_run_folder

with hold_run_folder(sys.argv[1], sys.argv[2]):
    print("holding", flush=True)
    sys.stdin.read()
"""

#: ``kit train --recipe argv[1] argv[3:]`` that starts when a line arrives on stdin and, at step argv[2],
#: prints "holding" and waits until stdin is closed.
TRAINER = """
import sys
import kit.train.loop
from kit.cli import main

hold_at = int(sys.argv[2])


class Hold:
    def on_step(self, record):
        if record["step"] == hold_at:
            print("holding", flush=True)
            sys.stdin.read()


plain = kit.train.loop.train
kit.train.loop.train = lambda cfg, callbacks=(), **given: plain(cfg, callbacks=[Hold()], **given)
print("ready", flush=True)
sys.stdin.readline()
sys.exit(main(["train", "--recipe", sys.argv[1], *sys.argv[3:]]))
"""


def start(script: str, *args) -> subprocess.Popen:
    pipe = subprocess.PIPE
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdin=pipe, stdout=pipe, stderr=pipe,
                            text=True, env=subprocess_env(), cwd=REPO)


def holds(proc: subprocess.Popen) -> bool:
    """Read ``proc``'s stdout up to its "holding" line (True) or to its end (False: it exited first)."""
    for line in proc.stdout:
        if line == "holding\n":
            return True
    return False


def let_go(proc: subprocess.Popen) -> tuple[str, str]:
    """Close ``proc``'s stdin and wait for it to end; its remaining stdout and stderr."""
    return proc.communicate(input="", timeout=600)


@pytest.fixture
def held(tmp_path):
    """``held(folder, what)``: another process holds ``folder`` (its Popen is returned) until the test ends."""
    procs = []

    def hold(folder, what="kit train") -> subprocess.Popen:
        procs.append(start(HOLDER, folder, what))
        assert holds(procs[-1]), procs[-1].communicate()[1]
        return procs[-1]

    yield hold
    for proc in procs:
        let_go(proc)


def busy_line(folder, what: str, pid: int) -> str:
    """The start of the message a refused writer gets."""
    return f"{folder} is in use by {what} (pid {pid} on host {socket.gethostname()}, started "


@pytest.fixture(scope="module")
def images(tmp_path_factory, make_images):
    return make_images(tmp_path_factory.mktemp("imgs"))


# -- the lock ------------------------------------------------------------------------------------------------


def test_a_held_folder_is_refused_at_once_in_one_line_naming_the_holder(tmp_path, held):
    folder = tmp_path / "run"
    holder = held(folder, "kit train")
    with pytest.raises(RunFolderBusy) as info:
        with hold_run_folder(folder, "kit train"):
            pytest.fail("a second holder got in")
    message = str(info.value)
    assert isinstance(info.value, UserError) and info.value.exit_code == 2
    assert message.startswith(busy_line(folder, "kit train", holder.pid)) and "choose another --out" in message
    assert "\n" not in message and not folder.exists()  # nothing written
    # the holder's record sits beside the folder, with the lock
    record = json.loads((tmp_path / ".run.lock.json").read_text())
    assert record["pid"] == holder.pid and record["what"] == "kit train" and (tmp_path / ".run.lock").exists()


def test_the_lock_outlives_a_rename_into_place_and_is_released_on_every_exit(tmp_path):
    folder = tmp_path / "data"
    with hold_run_folder(folder, "python -m data_prep digits") as lock:
        assert lock == tmp_path / ".data.lock"
        for version in ("old", "new"):  # built beside, renamed onto the folder (the second time replacing it)
            with atomic_dir(folder) as tmp:
                (tmp / "version").write_text(version)
        with pytest.raises(RunFolderBusy, match=re.escape(f"by python -m data_prep digits (pid {os.getpid()} on host")):
            with hold_run_folder(folder):
                pass
    assert sorted(p.name for p in folder.iterdir()) == ["version"]  # the folder holds only what was written
    with pytest.raises(ValueError):
        with hold_run_folder(folder):
            raise ValueError("a failing run")
    assert not (tmp_path / ".data.lock.json").exists()
    with hold_run_folder(folder):  # free again
        pass


def test_a_killed_holder_holds_nothing(tmp_path, held):
    folder = tmp_path / "run"
    holder = held(folder)
    holder.kill()
    holder.wait()
    assert json.loads((tmp_path / ".run.lock.json").read_text())["pid"] == holder.pid  # its record, left behind
    with hold_run_folder(folder):
        assert json.loads((tmp_path / ".run.lock.json").read_text())["pid"] == os.getpid()


def test_a_folder_whose_parent_cannot_hold_the_lock_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=re.escape(f"cannot create the lock file {tmp_path / 'file' / '.run.lock'}")):
        with hold_run_folder(tmp_path / "file" / "run"):
            pytest.fail("locked inside a file")


def test_ranks_other_than_0_touch_nothing(tmp_path):
    with hold_run_folder(tmp_path / "runs" / "x", enabled=False) as lock:
        assert lock is None
    assert list(tmp_path.iterdir()) == []


# -- kit train ------------------------------------------------------------------------------------------------


def test_two_trainers_started_together_one_trains_and_the_other_exits_2(images, tmp_path, capsys):
    from kit.cli import main

    out = tmp_path / "run"
    recipe = tmp_path / "tiny.json"
    recipe.write_text(json.dumps(tiny_recipe(images, out, epochs=1, **{"run.max_steps": 5})))
    trainers = [start(TRAINER, recipe, 1) for _ in range(2)]
    assert [p.stdout.readline() for p in trainers] == ["ready\n"] * 2
    for p in trainers:  # both go at once; whichever locks first holds the run at step 1 until the end of the test
        p.stdin.write("go\n")
        p.stdin.flush()
    holding = [holds(p) for p in trainers]
    assert sorted(holding) == [False, True]
    winner, loser = trainers[holding.index(True)], trainers[holding.index(False)]
    _, err = let_go(loser)
    assert loser.returncode == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("kit train: error: " + busy_line(out, "kit train", winner.pid)), err

    for flag in ("--resume", "--overwrite"):  # neither takes a folder from a live run
        assert main(["train", "--recipe", str(recipe), flag]) == 2
        assert busy_line(out, "kit train", winner.pid) in capsys.readouterr().err

    stdout, err = let_go(winner)
    assert winner.returncode == 0 and "done (max_steps): 5 steps" in stdout, err
    assert all(json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines())
    assert [s for s, _ in step_losses(out)] == list(range(5)) and log_iterations(out) == list(range(5))
    assert not (tmp_path / ".run.lock.json").exists()


def test_a_killed_trainer_leaves_no_lock_and_resume_goes_on(images, tmp_path, capsys):
    from kit.cli import main

    out = tmp_path / "run"
    recipe = tmp_path / "tiny.json"
    recipe.write_text(json.dumps(tiny_recipe(images, out, epochs=1, **{"run.save_every": 1})))
    trainer = start(TRAINER, recipe, 3)
    trainer.stdin.write("go\n")
    trainer.stdin.flush()
    assert holds(trainer)
    trainer.kill()
    trainer.communicate()
    assert json.loads((tmp_path / ".run.lock.json").read_text())["pid"] == trainer.pid

    assert main(["train", "--recipe", str(recipe), "--resume"]) == 0, capsys.readouterr().err
    assert [s for s, _ in step_losses(out)] == list(range(8)) and log_iterations(out) == list(range(8))
    assert "resumed from" in (out / "train.log").read_text()


# -- kit workshop and data_prep ----------------------------------------------------------------------------------


def test_a_held_workshop_folder_is_refused_at_once(tmp_path, held, capsys):
    import kit.workshop as workshop
    from kit.cli import main

    out = tmp_path / "ws"
    holder = held(out, "kit workshop")
    with pytest.raises(RunFolderBusy, match=re.escape(busy_line(out, "kit workshop", holder.pid))):
        workshop.run_workshop(out, device="cpu", notebooks=())
    assert main(["workshop", "--out", str(out), "--device", "cpu"]) == 2
    assert ("kit workshop: error: " + busy_line(out, "kit workshop", holder.pid)) in capsys.readouterr().err
    assert not out.exists()
    let_go(holder)
    workshop.run_workshop(out, device="cpu", notebooks=(), log=lambda line: None)
    assert (out / "summary.json").exists() and not (tmp_path / ".ws.lock.json").exists()


def test_data_prep_refuses_a_held_out(tmp_path, held, make_images, capsys):
    from data_prep.cli import main
    from data_prep.imagenet import prepare_imagenet

    out = tmp_path / "digits"
    holder = held(out, "python -m data_prep digits")
    proc = subprocess.run([sys.executable, "-m", "data_prep", "digits", "--out", str(out)], capture_output=True,
                          text=True, env=subprocess_env(), cwd=tmp_path, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    what = "python -m data_prep digits"
    assert f"{what}: error: {busy_line(out, what, holder.pid)}" in proc.stderr
    src = make_images(tmp_path / "src", classes=2, train_per_class=2, val_per_class=1)
    assert main(["subset", "--src", str(src), "--out", str(out), "--classes", "1"]) == 2
    assert busy_line(out, what, holder.pid) in capsys.readouterr().err
    with pytest.raises(RunFolderBusy):
        prepare_imagenet(out)
    assert not out.exists()
