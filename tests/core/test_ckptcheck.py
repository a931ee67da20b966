"""A checkpoint that cannot be resumed names its cause (truncated, not a kit checkpoint, a newer kit format,
weights only) and the way on (``best.pth``, or start over), in one line with exit code 2."""

from __future__ import annotations

import json

import pytest
import torch

from kit.train import CHECKPOINT_FORMAT, train
from tests.helpers import tiny_recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_images):
    """A finished tiny run: last.pth and best.pth, and its recipe as a file for `kit train --resume`."""
    root = tmp_path_factory.mktemp("ckpt")
    images = make_images(root / "images")
    cfg = tiny_recipe(images, root / "run", epochs=1)
    train(cfg)
    (root / "recipe.json").write_text(json.dumps(cfg))
    return root


def resume_error(run, capsys, path) -> str:
    from kit.cli import main

    assert main(["train", "--recipe", str(run / "recipe.json"), "--resume", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_truncated_names_its_size_against_a_complete_ones(run, capsys, tmp_path):
    whole = (run / "run" / "last.pth").read_bytes()
    tensors = sum(t.numel() * t.element_size() for t in _tensors(torch.load(run / "run" / "last.pth")))
    cut = tmp_path / "last.pth"
    cut.write_bytes(whole[: len(whole) // 2])
    (tmp_path / "best.pth").write_bytes((run / "run" / "best.pth").read_bytes())
    err = resume_error(run, capsys, cut)
    assert f"{cut} is truncated: it has " in err and f"({len(whole) // 2:,} bytes)" in err
    assert "a complete one holds at least " in err and f"({tensors:,} bytes of tensors)" in err
    assert len(whole) // 2 < tensors <= len(whole)
    assert f"{tmp_path / 'best.pth'} still holds the best validated weights" in err and "--overwrite" in err
    cut.write_bytes(whole[:40])  # cut inside its list of tensors
    assert "is truncated" in resume_error(run, capsys, cut)
    cut.write_bytes(b"")
    assert f"{cut} is empty (0 bytes)" in resume_error(run, capsys, cut)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def test_foreign_files_and_formats(run, capsys, tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"<html>not a checkpoint</html>")
    assert f"{path} is not a PyTorch checkpoint (it begins with b'<html>no'), so not a kit checkpoint" in \
        resume_error(run, capsys, path)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    assert f"{path} is not a kit training checkpoint (no 'format' entry;" in resume_error(run, capsys, path)
    assert "holds weights only (format 'vitkit-train-1-weights', a best.pth)" in \
        resume_error(run, capsys, run / "run" / "best.pth")
    newer = torch.load(run / "run" / "last.pth", weights_only=True)
    newer["format"] = "vitkit-train-" + str(int(CHECKPOINT_FORMAT.rsplit("-", 1)[1]) + 1)
    torch.save(newer, path)
    err = resume_error(run, capsys, path)
    fmt = newer["format"]
    assert f"{path} was written by a newer kit (format '{fmt}'; this kit reads '{CHECKPOINT_FORMAT}')" in err
    assert "start over with --overwrite" in err
