"""Training checkpoints: what they hold, reading one back for ``--resume``, where a run starts from.

``last.pth`` holds everything a run needs to go on exactly (:mod:`kit.train.loop` says why resume is exact);
``best.pth`` only the weights. Both are read with ``weights_only=True`` and checked
(:mod:`kit.core.ckptcheck`) before anything in them is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from kit.core import ckptcheck, seeding
from kit.core.atomic import tensor_bytes
from kit.core.errors import UserError
from kit.device import shim as device
from kit.train.parts import Parts

__all__ = ["CHECKPOINT_FORMAT", "load_training_state", "restore", "weights_state", "resume_path",
           "starting_point", "checkpoints_bytes", "what_is_intact"]

CHECKPOINT_FORMAT = "vitkit-train-1"


def load_training_state(path: Path) -> dict:
    """A kit training checkpoint (what ``--resume`` restores), loaded with ``weights_only=True``."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"nothing to resume: {path} does not exist (no checkpoint was saved yet); run without --resume"
        ) from None
    except Exception as e:  # noqa: BLE001 - unpickling errors come in many types
        raise UserError(f"{ckptcheck.unreadable(path, e)}; {ckptcheck.way_on(path)}") from None
    ckptcheck.check_training_state(ckpt, path, CHECKPOINT_FORMAT)
    return ckpt


def restore(
    parts: Parts, ckpt: Mapping, path: Path, cfg: Mapping, num_classes: int, dev: device.Device, main: bool
) -> None:
    """Put a checkpoint's model, EMA, optimizer, schedule, scaler and (rank 0's) RNG states back."""
    if ckpt["model_name"] != cfg["model"]["name"] or ckpt["num_classes"] != num_classes:
        raise UserError(
            f"{path} was written for model {ckpt['model_name']} with {ckpt['num_classes']} classes "
            f"(recipe {ckpt.get('recipe')}), but this run builds {cfg['model']['name']} with {num_classes} classes. "
            "Resume with the recipe that wrote it, or start a fresh run in another --out"
        )
    try:
        parts.model.load_state_dict(ckpt["model"])
        if parts.ema is not None and ckpt.get("ema") is not None:
            parts.ema.load_state_dict(ckpt["ema"])
    except RuntimeError as e:
        raise UserError(f"{path} does not fit {cfg['model']['name']}: {str(e).splitlines()[0]}") from None
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    parts.scheduler.load_state_dict(ckpt["scheduler"])
    if parts.scaler is not None and ckpt.get("scaler"):
        parts.scaler.load_state_dict(ckpt["scaler"])
    if main:
        seeding.set_rng_state(ckpt["rng"], dev)


def weights_state(parts: Parts, cfg: Mapping, num_classes: int) -> dict:
    """What both checkpoints hold: the weights, the EMA and what is needed to rebuild the model."""
    return {
        "recipe": cfg["name"],
        "model_name": cfg["model"]["name"],
        "model_kwargs": dict(cfg["model"].get("kwargs") or {}),
        "num_classes": num_classes,
        "img_size": int(cfg["data"]["img_size"]),
        "model": parts.model.state_dict(),
        "ema": parts.ema.state_dict() if parts.ema is not None else None,
    }


def resume_path(resume: Any, out: Path) -> Path:
    if resume is True or resume in ("", "auto"):
        return out / "last.pth"
    path = Path(str(resume))
    return path / "last.pth" if path.is_dir() else path


def starting_point(run: Mapping, out: Path, main: bool) -> tuple[Optional[dict], Optional[Path]]:
    """The checkpoint ``--resume`` names (and its path), or (None, None) for a fresh run.

    A fresh run into a folder that holds one is refused unless ``--overwrite``, which removes its checkpoints.
    """
    if run["resume"]:
        path = resume_path(run["resume"], out)
        return load_training_state(path), path
    if (out / "last.pth").exists():
        if not run["overwrite"]:
            raise UserError(
                f"{out} already holds a run ({out / 'last.pth'}); pass --resume to continue it, "
                "--overwrite to start again from scratch, or choose another --out"
            )
        if main:
            for stale in ("last.pth", "best.pth"):
                (out / stale).unlink(missing_ok=True)
    return None, None


def checkpoints_bytes(parts: Parts, cfg: Mapping) -> int:
    """About what a run's checkpoints take on disk at their peak: last.pth and the new copy being written beside
    it (weights, EMA, the optimizer's state), and best.pth (weights, EMA). Known once the model is built."""
    weights = tensor_bytes(parts.model.state_dict())
    if parts.ema is not None:
        weights *= 2
    params = tensor_bytes(parts.params)
    moments = 2 if any(k in str(cfg["optimizer"]["opt"]).lower() for k in ("adam", "lamb", "lion")) else 1
    return 2 * (weights + moments * params) + weights


def what_is_intact(out: Path, saved_step: Optional[int]) -> str:
    """The last part of a full disk's line in ``kit train``: the checkpoint to resume from, and how."""
    if saved_step is None:
        return "no checkpoint was saved yet; free space and run it again (with --overwrite)"
    return (f"the checkpoint of step {saved_step} ({out / 'last.pth'}) is intact; "
            "free space and rerun with --resume")
