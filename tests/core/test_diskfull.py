"""A full disk at each kind of write: one line, exit 2, nothing that was complete is damaged, and a run
resumed once space is free continues exactly.

Where the test may mount one (root on Linux), the disk really is a small tmpfs that the test fills, so the
failures are the real ones (torch's zip writer hiding ENOSPC included); elsewhere the writer is patched to
raise ``OSError(ENOSPC)`` (``KIT_TEST_NO_TMPFS=1`` forces that here too).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from kit.core import diskfull
from kit.core.atomic import atomic_savefig, atomic_torch_save, atomic_write_text
from kit.train.runlog import RunLog, read_metrics
from tests.helpers import step_losses, tiny_recipe

LEFT = 48_000  # bytes left free when the disk is "full": more than a few log lines, less than any checkpoint here


class Disk:
    """A folder on a small disk: ``fill()`` leaves ``LEFT`` bytes free, ``free()`` gives the space back.

    ``real``: a tmpfs mounted for the test. Otherwise ``fill()`` makes the kit's writers raise ENOSPC
    (torch.save, matplotlib's savefig, the logs' write, safetensors, PIL), as a full disk would.
    """

    def __init__(self, root: Path, monkeypatch, size: int = 4_000_000):
        self.root, self.monkeypatch, self.filler = root, monkeypatch, root / ".filler"
        root.mkdir(parents=True, exist_ok=True)
        self.real = os.name == "posix" and not os.environ.get("KIT_TEST_NO_TMPFS") and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True).returncode == 0
        self.patched = False

    def fill(self) -> None:
        if self.real:
            with open(self.filler, "ab") as f:
                os.posix_fallocate(f.fileno(), 0, max(1, os.statvfs(self.root).f_bavail * 4096 - LEFT
                                                      + os.fstat(f.fileno()).st_size))
            return
        self.patched = True

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        import matplotlib.figure
        import safetensors.torch
        from PIL import Image

        for owner, name in ((torch, "save"), (matplotlib.figure.Figure, "savefig"), (safetensors.torch, "save_file"),
                            (Image.Image, "save")):
            self.monkeypatch.setattr(owner, name, full)
        real_fsync = os.fsync

        def fsync(fd):  # the writes that end in fsync (atomic_write_text): what is larger than LEFT does not fit
            if os.fstat(fd).st_size > LEFT:
                full()
            real_fsync(fd)

        self.monkeypatch.setattr(os, "fsync", fsync)

    def free(self) -> None:
        if self.real:
            self.filler.unlink(missing_ok=True)
        else:
            self.monkeypatch.undo()

    def close(self) -> None:
        if self.real:
            subprocess.run(["umount", "-l", str(self.root)], check=True)


@pytest.fixture
def disk(tmp_path, monkeypatch):
    d = Disk(tmp_path / f"disk-{uuid.uuid4().hex[:6]}", monkeypatch)
    yield d
    d.close()


def one_line(text: str) -> str:
    text = text.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    return text


# -- the message --------------------------------------------------------------------------------------


def test_the_line_names_what_where_needed_free_and_intact(tmp_path):
    e = diskfull.disk_full("the checkpoint", tmp_path / "last.pth", needed=3_400_000, intact="x is intact")
    assert isinstance(e, diskfull.DiskFull) and e.exit_code == 2
    free = diskfull.human(diskfull.free_bytes(tmp_path))
    assert str(e) == f"no space left on the disk writing the checkpoint {tmp_path / 'last.pth'}: it needs about " \
                     f"3.4 MB, {free} is free; x is intact"
    assert str(e.with_intact("y is intact")).endswith(f"{free} is free; y is intact")


def test_what_counts_as_a_full_disk(tmp_path):
    assert diskfull.is_out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert diskfull.is_out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not diskfull.is_out_of_space(OSError(errno.EACCES, "Permission denied"))
    torch_zip = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1146944 vs 1146832")
    # torch's message alone proves nothing: it counts only where the disk is really short of the bytes needed
    assert not diskfull.is_out_of_space(torch_zip, tmp_path, needed=1000)
    assert diskfull.is_out_of_space(torch_zip, tmp_path, needed=(diskfull.free_bytes(tmp_path) or 0) + 10**9)
    assert not diskfull.is_out_of_space(RuntimeError("shape mismatch"), tmp_path, needed=10**18)


def test_early_warning_when_the_disk_is_short(tmp_path):
    said = []
    free = diskfull.free_bytes(tmp_path)
    assert not diskfull.warn_if_short(tmp_path, free // 2, "x", said.append) and said == []
    assert diskfull.warn_if_short(tmp_path / "not" / "yet", free * 2, "the checkpoints", said.append)
    assert said[0].startswith("warning: the checkpoints need about") and diskfull.human(free) in said[0]


# -- each kind of write --------------------------------------------------------------------------------


def write_checkpoint(path: Path) -> None:
    atomic_torch_save({"w": torch.arange(300_000, dtype=torch.float32) + len(str(path))}, path)


def write_figure(path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 12))
    fig.add_subplot().imshow(torch.rand(400, 400).numpy())
    atomic_savefig(fig, path, dpi=150)


def write_report(path: Path) -> None:
    atomic_write_text(path, "<p>report</p>" * 20_000, what="the run report")


def write_dump(path: Path) -> None:
    from kit.align.dumpio import write_dump as write

    write(path, {"model": "m", "module_tree": {}, "parameters": [], "entries": [], "amp": None, "config": {}},
          {"x": torch.rand(200_000)})


WRITERS = {"checkpoint": (write_checkpoint, "last.pth"), "figure": (write_figure, "fig.png"),
           "report": (write_report, "index.html"), "align dump": (write_dump, "dump")}


def _snapshot(path: Path) -> dict:
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return {"": path.read_bytes()}


@pytest.mark.parametrize("kind", WRITERS)
def test_each_writer_says_one_line_and_keeps_the_earlier_file(kind, disk):
    write, name = WRITERS[kind]
    target = disk.root / name
    write(target)  # a complete earlier copy
    before = _snapshot(target)
    disk.fill()
    with pytest.raises(diskfull.DiskFull) as info:
        write(target)
    message = one_line(str(info.value))
    assert message.startswith("no space left on the disk writing ") and f"{target}:" in message
    assert " is free" in message and "is intact" in message
    disk.free()
    assert _snapshot(target) == before  # the earlier copy, byte for byte
    assert sorted(p.name for p in disk.root.iterdir() if p != disk.filler) == [name]  # no temporary left


class FullFile:
    """A log file on a full disk: the first 100 bytes of a write go out, then ENOSPC."""

    def __init__(self, f):
        self.f = f

    def fileno(self) -> int:
        return self.f.fileno()

    def write(self, data: bytes) -> int:
        if len(data) > 100:
            return self.f.write(data[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self) -> None:
        self.f.close()


def test_the_logs_stay_valid_json_lines(disk):
    log = RunLog(disk.root)
    log.step({"step": 0, "epoch": 0, "loss": 1.0, "images_per_s": 1.0})
    disk.fill()
    if not disk.real:
        log._files["metrics.jsonl"] = FullFile(log._files["metrics.jsonl"])
    logs = r"(metrics\.jsonl|train\.log)"
    with pytest.raises(diskfull.DiskFull, match=rf"writing the run's log {logs} .*{logs} holds every"):
        for step in range(1, 10_000):
            log.step({"step": step, "epoch": 0, "loss": 1.0, "images_per_s": 1.0, "pad": "x" * 500})
    log.close()
    records = read_metrics(disk.root / "metrics.jsonl")  # every line parses: no half line was left
    assert [r["step"] for r in records] == list(range(len(records))) and records
    assert (disk.root / "train.log").read_text().endswith("imgs/s\n")


def test_data_prep_digits_exits_2_in_one_line(disk, capsys):
    from data_prep.cli import main

    disk.fill()
    assert main(["digits", "--out", str(disk.root / "digits")]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"writing the digits dataset {disk.root / 'digits'}:" in err and "nothing half-written" in err
    disk.free()
    assert sorted(p.name for p in disk.root.iterdir() if p != disk.filler) == [".digits.lock"]


# -- kit train: a full disk mid-run, then --resume once space is free -----------------------------------------


def test_kit_train_stops_in_one_line_and_resumes_exactly(images, disk, tmp_path, capsys):
    from kit.cli import main
    from kit.train import train

    reference = train(tiny_recipe(images, tmp_path / "reference", epochs=2))
    out = disk.root / "run"
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(tiny_recipe(images, out, epochs=2, **{"run.save_every": 3})))
    real_step = RunLog.step

    def fill_after_step_4(self, record):
        real_step(self, record)
        if record["step"] == 4:
            disk.fill()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RunLog, "step", fill_after_step_4)
        assert main(["train", "--recipe", str(recipe)]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"kit train: error: no space left on the disk writing the checkpoint {out / 'last.pth'}: "
                          "it needs about ")
    assert f"the checkpoint of step 3 ({out / 'last.pth'}) is intact; free space and rerun with --resume" in err
    assert torch.load(out / "last.pth", weights_only=True)["position"]["step"] == 3
    assert [s for s, _ in step_losses(out)] == list(range(6))  # valid lines, up to the step whose save failed
    assert not [p for p in out.iterdir() if ".tmp" in p.name]

    disk.free()
    assert main(["train", "--recipe", str(recipe), "--resume"]) == 0
    assert step_losses(out) == step_losses(tmp_path / "reference") and reference.steps == len(step_losses(out))


def test_kit_train_warns_before_it_starts_when_the_checkpoints_will_not_fit(images, disk, capsys, tmp_path):
    from kit.train import train

    if not disk.real:
        pytest.skip("needs a disk that is really small (a tmpfs)")
    disk.fill()
    with pytest.raises(diskfull.DiskFull):
        train(tiny_recipe(images, disk.root / "run", epochs=1, **{"run.save_every": 1}))
    log = (disk.root / "run" / "train.log").read_text()
    assert "warning: this run's checkpoints (last.pth beside the copy that replaces it, and best.pth) need about" in log


@pytest.fixture(scope="module")
def images(tmp_path_factory, make_images) -> Path:
    return make_images(tmp_path_factory.mktemp("imgs"))
