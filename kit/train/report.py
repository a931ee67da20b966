"""What a run says about itself before its first step: ``config.json`` and the preamble of ``train.log``.

``config.json`` holds the resolved recipe, the values the run derived from it (the scaled learning rate, steps
per epoch, the number of classes in the data ...) and the environment (versions, device, host, command line),
so that a run folder can always be traced back to the numbers it used. train.log opens with the same facts in
sentences, in the order a reader checks them: model, data, device, precision, learning rate, schedule.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Mapping, Optional

import numpy
import timm
import torch
import torchvision

import kit
from kit.core import diskfull
from kit.core.atomic import atomic_write_text
from kit.device import shim as device
from kit.train.checkpoint import checkpoints_bytes
from kit.train.parts import warmup_start
from kit.train.state import Run

__all__ = ["environment", "derived", "report_start"]


def environment(dev: device.Device, world: int) -> dict:
    """What ran the run: versions, device, processes, host, command line, start time."""
    return {
        "kit": kit.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "device": dev.describe(),
        "world_size": world,
        "torch_threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "started": datetime.now().isoformat(timespec="seconds"),
    }


def derived(run: Run, resumed: bool) -> dict:
    """The values the run derived from the recipe, for config.json's ``"derived"`` and the log."""
    parts, plan = run.parts, run.plan
    return {
        "lr": parts.lr,
        "lr_rule": parts.lr_rule,
        "warmup_lr": warmup_start(run.cfg["schedule"], parts.lr),
        "world_size": run.world,
        "global_batch": run.global_batch,
        "steps_per_epoch": plan.steps_per_epoch,
        "total_steps": plan.total_steps,
        "stop_at_step": plan.stop_at,
        "num_classes": run.num_classes,
        "parameters": sum(p.numel() for p in parts.model.parameters()),
        "precision": parts.policy.describe(),
        "optimizer": f"{type(parts.optimizer).__name__} "
        f"({'fused' if parts.optimizer.defaults.get('fused') else 'torch default'} kernel)",
        "data": run.loaders.info,
        "resumed_from": asdict(run.start) if resumed else None,
    }


def report_start(run: Run, ckpt: Optional[Mapping], ckpt_path: Optional[Path]) -> None:
    """Write config.json, open train.log with where the run starts and its preamble, warn if the disk is short."""
    cfg, plan = run.cfg, run.plan
    facts = derived(run, resumed=ckpt is not None)
    if run.main:
        config_json = {"recipe": cfg, "derived": facts, "environment": environment(run.dev, run.world)}
        atomic_write_text(run.out / "config.json", json.dumps(config_json, indent=2, default=str) + "\n",
                          "the run's config")
    if ckpt is None:
        run.say(f"vitkit train: recipe {cfg['name']}: {cfg.get('description', '')}")
    else:
        pos = run.start
        run.say(f"resumed from {ckpt_path} at step {pos.step} (epoch {pos.epoch}, batch {pos.batch})")
        if ckpt.get("global_batch") != run.global_batch or ckpt.get("steps_per_epoch") != plan.steps_per_epoch:
            run.say(
                f"warning: the checkpoint was written with global batch {ckpt.get('global_batch')} and "
                f"{ckpt.get('steps_per_epoch')} steps/epoch, this run has {run.global_batch} and "
                f"{plan.steps_per_epoch}: "
                "it will not repeat the original run"
            )
    _preamble(run, facts)
    if run.main:
        diskfull.warn_if_short(run.out, checkpoints_bytes(run.parts, cfg), "this run's checkpoints (last.pth beside "
                               "the copy that replaces it, and best.pth)", run.say)


def _preamble(run: Run, facts: Mapping) -> None:
    """The preamble of train.log: model, data, device, precision, optimizer, learning rate, schedule."""
    cfg, plan, dev, info, say = run.cfg, run.plan, run.dev, run.loaders.info, run.say
    sched = cfg["schedule"]
    say(
        f"model {cfg['model']['name']}: {facts['parameters']:,} parameters, {facts['num_classes']} classes, "
        f"drop_path {cfg['model'].get('drop_path_rate')}"
    )
    say(f"data: {info['train']} ({info['train_images']} images); val: {info['val']} ({info['val_images']} images)")
    backend = f", backend {dev.dist_backend}" if run.world > 1 else ""
    say(f"device: {dev} ({dev.name()}); {run.world} process(es){backend}")
    if dev.emulated:
        say("device: EMULATED SDAA card (vitkit's emulator): every time and speed below is the CPU's, "
            "never a measurement of the card")
    say(f"precision: {run.parts.policy.describe()}; optimizer: {facts['optimizer']}")
    say(run.parts.lr_rule)
    say(
        f"schedule: cosine to {sched.get('min_lr')}, "
        f"warm-up {sched.get('warmup_epochs')} epochs from {facts['warmup_lr']:.3g}, "
        f"stepped per {'epoch' if sched.get('step_on_epochs') else 'iteration'}; "
        f"{plan.steps_per_epoch} steps/epoch x {cfg['epochs']} epochs = {plan.total_steps} steps"
        + (f", stopping after step {plan.stop_at}" if plan.stop_at < plan.total_steps else "")
    )
