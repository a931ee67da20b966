"""``kit train``: one training loop for HiViT and CaiT, to be read top to bottom.

    kit train --recipe workshop_hivit                      # 32x32 digits, CPU, about a minute
    kit train --recipe cait_s24_in1k --data /data/imagenet --max-steps 100    # ModelZoo alignment run
    torchrun --nproc-per-node 8 -m kit train --recipe hivit_base_in1k --data /data/imagenet

From Python (a notebook draws a live loss curve from ``on_step``)::

    from kit.config.recipes import resolve
    from kit.train.loop import train
    result = train(resolve("workshop_hivit", {"epochs": 3}), callbacks=[my_plot])

What is whose: timm builds the model, the optimizer (no weight decay on norms, biases, position
embeddings and relative-position tables), the cosine schedule with warm-up, Mixup/CutMix, the
losses and the EMA; torchvision reads the images (:mod:`kit.data.loaders`); the device shim
(:mod:`kit.device.shim`) supplies autocast, the grad scaler and the DDP backend; the recipe
(:mod:`kit.config.recipes`) holds every number. This file only wires them together in one loop.

Reproducibility, and why resume is exact
----------------------------------------
All randomness is a function of ``(seed, rank, step)`` or ``(seed, epoch, sample index)``:

* the order of the images in an epoch comes from a generator seeded by ``(seed, epoch)``;
* each image's augmentation from generators seeded by ``(seed, epoch, index)`` (kit.data.loaders);
* Mixup/CutMix, drop-path and dropout from the global generators, re-seeded from
  ``(seed, rank, step)`` before every step (so ranks differ from one another, as in DeiT's
  ``seed + rank``, and a step's draws do not depend on what ran before it).

A checkpoint holds the model, optimizer, scheduler, grad scaler, EMA, every RNG state, the
position inside the epoch and the byte length of both logs. ``--resume`` restores them, cuts the
logs back to the checkpoint and skips the batches already consumed without loading them; on the CPU
a run killed at any moment (SIGKILL included) and resumed logs exactly the per-step losses of an
uninterrupted run (tests/test_train.py kills one to check). On GPUs, kernels that are not
deterministic can still make the two differ in the last digits.

Multi-process runs
------------------
Under ``torchrun`` every process trains on its shard of each global batch (``--batch-size`` is per
process, so the global batch is ``batch_size x world_size``); the learning rate is scaled by the
global batch (DeiT's rule, stated in train.log); the logged loss is the mean over all processes;
only rank 0 writes files. The per-rank seeds above mean that Mixup and drop-path draw differently
on each rank; with those off, a 2-process run follows the loss curve of a 1-process run with the
same global batch to float rounding (tested).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import platform
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy
import timm
import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3, reduce_tensor
from tqdm.auto import tqdm

import kit
from kit import models
from kit.config import recipes
from kit.core import ckptcheck, diskfull, seeding
from kit.core.atomic import atomic_torch_save, atomic_write_text, tensor_bytes
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder
from kit.data import loaders as data
from kit.device import shim as device
from kit.device.choices import AMP_CHOICES
from kit.train import perturb
from kit.train.runlog import RunLog

CHECKPOINT_FORMAT = "vitkit-train-1"
#: With a grad scaler, a non-finite loss skips the step; this many in a row stop the run.
MAX_SKIPPED_IN_A_ROW = 20


@dataclass
class TrainResult:
    """What :func:`train` returns (``on_step`` / ``on_eval`` records are in metrics.jsonl too)."""

    out_dir: str
    steps: int  # optimizer steps done, counting those before a resume
    epochs_completed: int
    val_acc1: Optional[float]  # last validation, in %
    val_acc5: Optional[float]
    val_loss: Optional[float]
    best_acc1: Optional[float]
    train_seconds: float  # wall-clock of this call's loop, validation included, set-up excluded
    images_per_s: float  # mean training throughput of this call (all processes together)
    last_loss: Optional[float]
    stopped: str  # "completed" (all epochs), "max_steps" or "max_epochs" (the limit that ended it)
    skipped_files: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return asdict(self)


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


@dataclass
class Position:
    """Where a run is: ``batch`` batches of epoch ``epoch`` are done, ``step`` optimizer steps in all."""

    epoch: int = 0
    batch: int = 0
    step: int = 0


# ---------------------------------------------------------------------------------------------
# Building the pieces (each from its library)
# ---------------------------------------------------------------------------------------------


def build_model(model_cfg: Mapping, num_classes: int, img_size: int) -> torch.nn.Module:
    """The recipe's model, through :func:`kit.models.create` (timm's registry, kit models included)."""
    return models.create(
        model_cfg["name"],
        num_classes=num_classes,
        img_size=img_size,
        drop_path_rate=float(model_cfg.get("drop_path_rate") or 0.0),
        **(model_cfg.get("kwargs") or {}),
    )


def use_fused_optimizer(opt_cfg: Mapping, dev: Optional[device.Device]) -> bool:
    """The recipe's ``optimizer.fused``: ``"auto"`` (the default) fuses where the device has the kernels
    (:meth:`kit.device.shim.Device.fused_optimizer`), ``true`` requires them, ``false`` keeps torch's default."""
    fused = opt_cfg.get("fused", "auto")
    if fused not in (True, False, "auto"):
        raise UserError(f"optimizer.fused must be auto, true or false, not {fused!r}")
    if fused is False:
        return False  # (no probe of the device)
    available = str(opt_cfg["opt"]).lower() in FUSED_OPTIMIZERS and dev is not None and dev.fused_optimizer()
    if fused is True and not available:
        raise UserError(f"optimizer.fused=true, but {opt_cfg['opt']} has no fused kernel on {dev}; use auto or false")
    return available


#: timm optimizer names whose torch implementation has a fused kernel (``fused=True``)
FUSED_OPTIMIZERS = ("adam", "adamw")


def build_optimizer(
    model: torch.nn.Module, opt_cfg: Mapping, lr: float, dev: Optional[device.Device] = None
) -> torch.optim.Optimizer:
    """timm's optimizer. timm exempts every 1-D parameter (norms, biases) and the names the model's own
    ``no_weight_decay()`` lists (position embeddings, class token, relative-position tables) from weight
    decay; torch's fused kernel where :func:`use_fused_optimizer` says so (``dev`` None: never)."""
    kwargs = {
        k: (tuple(opt_cfg[k]) if k == "betas" else opt_cfg[k])
        for k in ("betas", "eps", "momentum")
        if opt_cfg.get(k) is not None
    }
    if use_fused_optimizer(opt_cfg, dev):
        kwargs["fused"] = True
    return create_optimizer_v2(
        model, opt=opt_cfg["opt"], lr=lr, weight_decay=float(opt_cfg.get("weight_decay") or 0.0), **kwargs
    )


def warmup_start(sched_cfg: Mapping, lr: float) -> float:
    """The warm-up's first lr: absolute (DeiT's warmup_lr) or a factor of the lr (mmpretrain's start_factor)."""
    if sched_cfg.get("warmup_factor") is not None:
        return lr * float(sched_cfg["warmup_factor"])
    return float(sched_cfg.get("warmup_lr") or 0.0)


def build_scheduler(optimizer, sched_cfg: Mapping, lr: float, epochs: int, steps_per_epoch: int):
    """timm's cosine schedule with linear warm-up, in steps (or in epochs where the recipe says so)."""
    if sched_cfg.get("sched", "cosine") != "cosine":
        raise UserError(f"schedule.sched {sched_cfg['sched']!r}: only 'cosine' is wired in the kit")
    per_step = not sched_cfg.get("step_on_epochs", False)
    unit = steps_per_epoch if per_step else 1
    warmup = int(round(float(sched_cfg.get("warmup_epochs") or 0) * unit))
    prefix = bool(sched_cfg.get("warmup_prefix", False))
    length = int(round((epochs - float(sched_cfg.get("cooldown_epochs") or 0)) * unit)) - (warmup if prefix else 0)
    return CosineLRScheduler(
        optimizer,
        t_initial=max(1, length),
        lr_min=float(sched_cfg.get("min_lr") or 0.0),
        warmup_t=warmup,
        warmup_lr_init=warmup_start(sched_cfg, lr),
        warmup_prefix=prefix,
        t_in_epochs=not per_step,
    )


def build_criterion(cfg: Mapping, num_classes: int):
    """(mixup_fn or None, loss): SoftTargetCrossEntropy after Mixup/CutMix, else label smoothing."""
    smoothing = float(cfg.get("label_smoothing") or 0.0)
    mix = cfg.get("mixup") or {}
    if mix and (mix.get("mixup_alpha", 0) > 0 or mix.get("cutmix_alpha", 0) > 0 or mix.get("cutmix_minmax")):
        if int(cfg["batch_size"]) % 2:
            raise UserError(
                f"Mixup/CutMix mixes pairs within a batch: --batch-size must be even, not {cfg['batch_size']}"
            )
        return Mixup(**mix, label_smoothing=smoothing, num_classes=num_classes), SoftTargetCrossEntropy()
    if smoothing > 0:
        return None, LabelSmoothingCrossEntropy(smoothing)
    return None, torch.nn.CrossEntropyLoss()


@dataclass
class Parts:
    """Everything one training step touches, built from the recipe (:func:`build_parts`)."""

    model: torch.nn.Module  # the weights (what checkpoints hold)
    params: list  # the parameters that train (what gradient clipping sees)
    train_model: torch.nn.Module  # what the step calls: the model, or its DDP / torch.compile wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Any
    policy: device.AmpPolicy
    scaler: Optional[Any]
    ema: Optional[Any]
    mixup_fn: Optional[Any]
    criterion: torch.nn.Module
    grad_clip: Optional[float]
    lr: float
    lr_rule: str


def build_parts(cfg: Mapping, dev: device.Device, num_classes: int, steps_per_epoch: int, world: int) -> Parts:
    """Model (seeded, so every process starts from the same weights), optimizer, schedule, precision, loss."""
    seeding.seed_all(int(cfg["seed"]), dev)
    model = build_model(cfg["model"], num_classes, int(cfg["data"]["img_size"])).to(dev.torch_device)
    perturb.apply(model, cfg.get("numerics") or {})  # off by default; an ensemble member's tiny weight noise
    lr, lr_rule = recipes.scaled_lr(cfg, world)
    optimizer = build_optimizer(model, cfg["optimizer"], lr, dev)
    policy = dev.amp_policy(cfg.get("amp", "none"))
    ema_cfg = cfg.get("ema") or {}
    mixup_fn, criterion = build_criterion(cfg, num_classes)
    train_model = model
    if world > 1:
        ids = [dev.index] if dev.type in ("cuda", "sdaa") and dev.index is not None else None
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.get("compile"):
        train_model = torch.compile(train_model)
    return Parts(
        model=model,
        params=[p for p in model.parameters() if p.requires_grad],
        train_model=train_model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, cfg["schedule"], lr, int(cfg["epochs"]), steps_per_epoch),
        policy=policy,
        scaler=dev.grad_scaler(policy),
        ema=ModelEmaV3(model, decay=float(ema_cfg["decay"])) if ema_cfg.get("enabled") else None,
        mixup_fn=mixup_fn,
        criterion=criterion,
        grad_clip=float(cfg["grad_clip"]) if cfg.get("grad_clip") else None,
        lr=lr,
        lr_rule=lr_rule,
    )


# ---------------------------------------------------------------------------------------------
# Processes, checkpoints, config.json
# ---------------------------------------------------------------------------------------------


def dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size); (0, 0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size()
    return 0, 0, 1


@contextlib.contextmanager
def distributed(device_spec: str = "auto"):
    """Under torchrun (``WORLD_SIZE`` > 1): bind to card ``LOCAL_RANK``, join the group, leave it after."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        yield
        return
    dev = device.resolve(device_spec).set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=dev.dist_backend)
    try:
        yield
    finally:
        dist.destroy_process_group()
        _REDUCED.clear()


#: The last tensors handed to a collective, kept alive until the process group is destroyed. Before torch 2.8
#: (pytorch#154976) a gloo work could drop the last reference to its tensor from a worker thread, which needs the
#: GIL, while the main thread held the GIL inside ``destroy_process_group`` waiting for that worker: a hang at
#: the end of a run (seen on torch 2.2, the SDAA floor). Only works still in flight are at risk: the last few.
_REDUCED: collections.deque = collections.deque(maxlen=16)


def _kept(tensor: torch.Tensor) -> torch.Tensor:
    _REDUCED.append(tensor)
    return tensor


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


def _resume_path(resume: Any, out: Path) -> Path:
    if resume is True or resume in ("", "auto"):
        return out / "last.pth"
    path = Path(str(resume))
    return path / "last.pth" if path.is_dir() else path


def _starting_point(run: Mapping, out: Path, main: bool) -> tuple[Optional[dict], Optional[Path]]:
    """The checkpoint ``--resume`` names (and its path), or (None, None) for a fresh run.

    A fresh run into a folder that holds one is refused unless ``--overwrite``, which removes its checkpoints.
    """
    if run["resume"]:
        path = _resume_path(run["resume"], out)
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


def _what_is_intact(out: Path, saved_step: Optional[int]) -> str:
    """The last part of a full disk's line in ``kit train``: the checkpoint to resume from, and how."""
    if saved_step is None:
        return "no checkpoint was saved yet; free space and run it again (with --overwrite)"
    return (f"the checkpoint of step {saved_step} ({out / 'last.pth'}) is intact; "
            "free space and rerun with --resume")


def _environment(dev: device.Device, world: int) -> dict:
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


def _is_oom(e: BaseException) -> bool:
    types = tuple(
        t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if t
    )
    text = str(e).lower()
    return isinstance(e, types) or (
        isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
    )


@contextlib.contextmanager
def friendly_errors(dev: device.Device, batch_size: int, where: str):
    """Turn running out of memory into a message that says what to change (exit code 2)."""
    try:
        yield
    except Exception as e:
        lacking = device.lacking_operator(e)
        if lacking:
            raise UserError(f"{lacking} ({where})") from None
        if not _is_oom(e):
            raise
        raise UserError(
            f"out of memory on {dev} {where} with --batch-size {batch_size} per process: "
            "use a smaller --batch-size (the lr follows it), or --amp to halve activation memory"
        ) from None


# ---------------------------------------------------------------------------------------------
# One step, one validation
# ---------------------------------------------------------------------------------------------


def train_step(
    parts: Parts, images: torch.Tensor, labels: torch.Tensor, dev: device.Device
) -> tuple[torch.Tensor, Optional[float], bool]:
    """Forward, backward, (clip,) optimizer step and EMA: ``(loss, grad_norm or None, stepped)``.

    With a grad scaler (fp16) a step whose gradients are not finite is skipped by the scaler, which
    then lowers its scale: ``stepped`` is False for it, and the EMA is not updated.
    """
    if parts.mixup_fn is not None:
        images, labels = parts.mixup_fn(images, labels)
    with dev.autocast(parts.policy):
        loss = parts.criterion(parts.train_model(images), labels)
    grad_norm, stepped, scaler = None, True, parts.scaler
    if scaler is None:
        loss.backward()
        if parts.grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(parts.params, parts.grad_clip)
        parts.optimizer.step()
    else:
        scaler.scale(loss).backward()
        if parts.grad_clip:
            scaler.unscale_(parts.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(parts.params, parts.grad_clip)
        scale = scaler.get_scale()
        scaler.step(parts.optimizer)
        scaler.update()
        stepped = scaler.get_scale() >= scale
    parts.optimizer.zero_grad(set_to_none=True)
    return loss, (float(grad_norm) if grad_norm is not None else None), stepped


def global_mean(value: torch.Tensor, world: int) -> float:
    """A scalar averaged over all processes (timm's ``reduce_tensor``), as a Python float."""
    value = value.detach().float()
    return float((_kept(reduce_tensor(value, world)) if world > 1 else value).item())


@torch.no_grad()
def evaluate(model, loader, dev: device.Device, policy, world: int) -> tuple[dict, list[str]]:
    """Loss, top-1 and top-5 accuracy (%) over the whole split, summed exactly over processes."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=dev.torch_device)  # loss, top1, top5, count
    skipped: list[str] = []
    for images, labels, skip in data.clean_errors(loader):
        skipped += skip
        images = images.to(dev.torch_device, non_blocking=True)
        labels = labels.to(dev.torch_device, non_blocking=True)
        with dev.autocast(policy):
            logits = model(images)
        k = min(5, logits.shape[1])
        hits = logits.float().topk(k, dim=1).indices == labels[:, None]
        sums += torch.stack(
            [
                F.cross_entropy(logits.float(), labels, reduction="sum").double(),
                hits[:, 0].sum().double(),
                hits.any(dim=1).sum().double(),
                torch.tensor(float(len(labels)), dtype=torch.float64, device=sums.device),
            ]
        )
    if world > 1:
        dist.all_reduce(_kept(sums))
    loss, top1, top5, n = sums.tolist()
    n = max(n, 1.0)
    return {"loss": loss / n, "acc1": 100.0 * top1 / n, "acc5": 100.0 * top5 / n, "images": int(n)}, skipped


# ---------------------------------------------------------------------------------------------
# The run: its plan, its start-of-run log, the loop
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """How long the run is: the schedule's length, and where ``--max-steps`` / ``--max-epochs`` stop it."""

    steps_per_epoch: int
    total_steps: int  # epochs x steps_per_epoch: the schedule's length
    stop_at: int  # the step the run stops at (total_steps unless a limit comes first)
    stop_reason: str  # what stopping at stop_at is called: "completed", "max_steps" or "max_epochs"

    @classmethod
    def of(cls, epochs: int, steps_per_epoch: int, run: Mapping) -> "Plan":
        total = epochs * steps_per_epoch
        limits = [(total, "completed")]
        if run.get("max_steps"):
            limits.append((int(run["max_steps"]), "max_steps"))
        if run.get("max_epochs"):
            limits.append((int(run["max_epochs"]) * steps_per_epoch, "max_epochs"))
        stop_at, reason = min(limits, key=lambda limit: limit[0])
        return cls(steps_per_epoch, total, min(stop_at, total), reason if stop_at < total else "completed")


def _log_start(
    say, cfg: Mapping, parts: Parts, plan: Plan, loaders, dev: device.Device, world: int, derived: Mapping
) -> None:
    """The preamble of train.log: model, data, device, precision, optimizer, learning rate, schedule."""
    sched = cfg["schedule"]
    say(
        f"model {cfg['model']['name']}: {derived['parameters']:,} parameters, {derived['num_classes']} classes, "
        f"drop_path {cfg['model'].get('drop_path_rate')}"
    )
    say(
        f"data: {loaders.info['train']} ({loaders.info['train_images']} images); "
        f"val: {loaders.info['val']} ({loaders.info['val_images']} images)"
    )
    say(f"device: {dev} ({dev.name()}); {world} process(es){', backend ' + dev.dist_backend if world > 1 else ''}")
    if dev.emulated:
        say("device: EMULATED SDAA card (vitkit's emulator): every time and speed below is the CPU's, "
            "never a measurement of the card")
    say(f"precision: {parts.policy.describe()}; optimizer: {derived['optimizer']}")
    say(parts.lr_rule)
    say(
        f"schedule: cosine to {sched.get('min_lr')}, "
        f"warm-up {sched.get('warmup_epochs')} epochs from {derived['warmup_lr']:.3g}, "
        f"stepped per {'epoch' if sched.get('step_on_epochs') else 'iteration'}; "
        f"{plan.steps_per_epoch} steps/epoch x {cfg['epochs']} epochs = {plan.total_steps} steps"
        + (f", stopping after step {plan.stop_at}" if plan.stop_at < plan.total_steps else "")
    )


def _derived(
    cfg: Mapping, parts: Parts, plan: Plan, loaders, num_classes: int, world: int, pos: Optional["Position"]
) -> dict:
    """The values the run derived from the recipe, for config.json's ``"derived"`` and the log."""
    return {
        "lr": parts.lr,
        "lr_rule": parts.lr_rule,
        "warmup_lr": warmup_start(cfg["schedule"], parts.lr),
        "world_size": world,
        "global_batch": int(cfg["batch_size"]) * world,
        "steps_per_epoch": plan.steps_per_epoch,
        "total_steps": plan.total_steps,
        "stop_at_step": plan.stop_at,
        "num_classes": num_classes,
        "parameters": sum(p.numel() for p in parts.model.parameters()),
        "precision": parts.policy.describe(),
        "optimizer": f"{type(parts.optimizer).__name__} "
        f"({'fused' if parts.optimizer.defaults.get('fused') else 'torch default'} kernel)",
        "data": loaders.info,
        "resumed_from": asdict(pos) if pos is not None else None,
    }


@dataclass
class Progress:
    """What changes as the run goes: the counters of the loop and what it has to report."""

    step: int
    best_acc1: Optional[float] = None
    skipped_files: set = field(default_factory=set)
    saved_step: Optional[int] = None  # the step last.pth holds (None: no checkpoint in this folder yet)
    last_loss: Optional[float] = None
    last_eval: dict = field(default_factory=dict)
    bad_in_a_row: int = 0  # non-finite losses in a row
    images_seen: int = 0  # by this call (all processes)


def train(config: Mapping | str, callbacks: Iterable[Any] = ()) -> TrainResult:
    """Train as ``config`` (a resolved recipe dict, or a recipe name) says; return what came of it.

    ``callbacks``: objects with ``on_step(record)`` and/or ``on_eval(record)``, called on rank 0
    with the same dicts that go to metrics.jsonl.

    The recipe is checked first (:func:`kit.config.recipes.resolve` runs :func:`kit.config.schema.check_recipe`): a bad
    value raises a one-line :class:`UserError` before the folder or its lock exists.
    The run folder is locked for the whole call (:mod:`kit.core.runlock`; by rank 0, the only one that
    writes it), before anything in it is read, written or deleted: a second run into it, started at
    the same moment or later, fails at once instead of interleaving its logs with this one's.
    """
    cfg = recipes.resolve(config)
    with hold_run_folder(cfg["run"]["out"], "kit train", enabled=dist_info()[0] == 0):
        return _train(cfg, callbacks)


def _train(cfg: dict, callbacks: Iterable[Any]) -> TrainResult:
    """:func:`train`'s run, in the run folder it holds."""
    run = cfg["run"]
    rank, local_rank, world = dist_info()
    main = rank == 0
    dev = device.resolve(run["device"])
    if world > 1:
        dev = dev.set_device(local_rank)
    out, seed, batch_size, epochs = Path(run["out"]), int(cfg["seed"]), int(cfg["batch_size"]), int(cfg["epochs"])
    ckpt, ckpt_path = _starting_point(run, out, main)

    # -- data, the plan, the pieces, where we start from ------------------------------------------
    loaders = data.build_loaders(
        cfg["data"],
        batch_size=batch_size,
        eval_batch_size=cfg.get("eval_batch_size"),
        seed=seed,
        rank=rank,
        world_size=world,
        skip_corrupt=bool(run["skip_corrupt"]),
        with_val=bool(cfg.get("eval_every")),
        pin_memory=dev.type == "cuda",
    )
    num_classes = int(cfg["model"].get("num_classes") or loaders.num_classes)
    if num_classes < loaders.num_classes:
        raise UserError(
            f"the recipe's model has {num_classes} classes but {loaders.train_source} has {loaders.num_classes}"
        )
    plan = Plan.of(epochs, loaders.steps_per_epoch, run)
    parts = build_parts(cfg, dev, num_classes, plan.steps_per_epoch, world)
    pos, progress, log_offsets = Position(), Progress(step=0), None
    if ckpt is not None:
        restore(parts, ckpt, ckpt_path, cfg, num_classes, dev, main)
        pos = Position(**ckpt["position"])
        progress = Progress(
            step=pos.step, best_acc1=ckpt.get("best_acc1"), skipped_files=set(ckpt.get("skipped_files", []))
        )
        if ckpt_path.resolve().parent == out.resolve():
            log_offsets, progress.saved_step = ckpt["log_offsets"], pos.step

    # -- the run folder --------------------------------------------------------------------------
    log = RunLog(out, enabled=main, resume_offsets=log_offsets)
    derived = _derived(cfg, parts, plan, loaders, num_classes, world, pos if ckpt is not None else None)
    if main:
        config_json = {"recipe": cfg, "derived": derived, "environment": _environment(dev, world)}
        atomic_write_text(out / "config.json", json.dumps(config_json, indent=2, default=str) + "\n",
                          "the run's config")

    def say(text: str) -> None:
        if main:
            log.info(text)
            tqdm.write(text)

    if ckpt is None:
        say(f"vitkit train: recipe {cfg['name']}: {cfg.get('description', '')}")
    else:
        say(f"resumed from {ckpt_path} at step {pos.step} (epoch {pos.epoch}, batch {pos.batch})")
        if ckpt.get("global_batch") != batch_size * world or ckpt.get("steps_per_epoch") != plan.steps_per_epoch:
            say(
                f"warning: the checkpoint was written with global batch {ckpt.get('global_batch')} and "
                f"{ckpt.get('steps_per_epoch')} steps/epoch, this run has {batch_size * world} and "
                f"{plan.steps_per_epoch}: "
                "it will not repeat the original run"
            )
    _log_start(say, cfg, parts, plan, loaders, dev, world, derived)
    if main:
        diskfull.warn_if_short(out, checkpoints_bytes(parts, cfg), "this run's checkpoints (last.pth beside the "
                               "copy that replaces it, and best.pth)", say)

    # -- what the loop calls -----------------------------------------------------------------------
    def save_checkpoint(at: Position) -> None:
        if main:
            state = {
                "format": CHECKPOINT_FORMAT,
                **weights_state(parts, cfg, num_classes),
                "optimizer": parts.optimizer.state_dict(),
                "scheduler": parts.scheduler.state_dict(),
                "scaler": parts.scaler.state_dict() if parts.scaler is not None else None,
                "rng": seeding.rng_state(dev),
                "position": asdict(at),
                "best_acc1": progress.best_acc1,
                "skipped_files": sorted(progress.skipped_files),
                "log_offsets": log.offsets(),
                "global_batch": batch_size * world,
                "steps_per_epoch": plan.steps_per_epoch,
            }
            atomic_torch_save(state, out / "last.pth")
        progress.saved_step = at.step

    def last_checkpoint() -> str:
        return "none was saved" if progress.saved_step is None else f"{out / 'last.pth'} (step {progress.saved_step})"

    def note_skipped(paths: list[str]) -> None:
        for p in sorted(set(paths) - progress.skipped_files):
            progress.skipped_files.add(p)
            say(f"skipped unreadable image {p} ({len(progress.skipped_files)} so far)")

    def emit(kind: str, record: dict) -> None:
        if main:
            (log.step if kind == "step" else log.eval)(record)
            for cb in callbacks:
                getattr(cb, f"on_{kind}", lambda record: None)(record)

    def one_step(epoch: int, i: int, batches, t_last: float) -> float:
        """Step ``progress.step`` (batch ``i`` of ``epoch``): train, log, stop on a non-finite loss; its end time."""
        step = progress.step
        with friendly_errors(dev, batch_size, f"at step {step}"):
            images, labels, skipped = next(batches)
            note_skipped(skipped)
            parts.scheduler.step_update(step)  # the lr of this step (per-iteration schedules)
            seeding.seed_all(seeding.derive_seed(seed, rank, step) % 2**63, dev)  # mixup, drop-path, dropout
            images = images.to(dev.torch_device, non_blocking=True)
            labels = labels.to(dev.torch_device, non_blocking=True)
            loss, grad_norm, stepped = train_step(parts, images, labels, dev)
            if parts.ema is not None and stepped:
                parts.ema.update(parts.model, step=step)
            progress.last_loss = loss_value = global_mean(loss, world)
        now = time.perf_counter()
        record = {
            "step": step,
            "epoch": epoch,
            "iter": i,
            "loss": loss_value,
            "lr": parts.optimizer.param_groups[0]["lr"],
            "images_per_s": batch_size * world / max(now - t_last, 1e-9),
            "time": now - t_last,
            "grad_norm": grad_norm,
        }
        if not stepped:
            record["skipped_step"] = True
        progress.images_seen += batch_size * world
        emit("step", record)
        bar.set_postfix(
            loss=f"{loss_value:.4f}", lr=f"{record['lr']:.2e}", img_s=f"{record['images_per_s']:.0f}", refresh=False
        )
        bar.update()
        progress.bad_in_a_row = 0 if math.isfinite(loss_value) else progress.bad_in_a_row + 1
        if progress.bad_in_a_row and (parts.scaler is None or progress.bad_in_a_row >= MAX_SKIPPED_IN_A_ROW):
            raise NonFiniteLoss(
                f"the loss is {loss_value} at step {step} (epoch {epoch}, iteration {i})"
                + (f", {progress.bad_in_a_row} steps in a row" if parts.scaler is not None else "")
                + f"; training stopped. Last good checkpoint: {last_checkpoint()}. Lower --lr, keep gradient "
                "clipping on (--set grad_clip=1.0), or train in fp32 (--amp none)"
            )
        progress.step += 1
        if run["save_every"] and progress.step % int(run["save_every"]) == 0:
            save_checkpoint(Position(epoch, i + 1, progress.step))
        return now

    # -- train: epochs of steps, each epoch ending in validation and a checkpoint -------------------
    bar = tqdm(
        total=plan.stop_at,
        initial=min(progress.step, plan.stop_at),
        desc=cfg["name"],
        unit="step",
        dynamic_ncols=True,
        disable=not (main and run["progress"]),
    )
    t_start = time.perf_counter()
    try:
        for epoch in range(pos.epoch, epochs):
            first = pos.batch if epoch == pos.epoch else 0
            last = min(plan.steps_per_epoch, first + max(0, plan.stop_at - progress.step))  # batches [first, last)
            if first < plan.steps_per_epoch and progress.step >= plan.stop_at:
                break  # (a resumed epoch with all its batches done still gets its validation below)
            loaders.train_sampler.set_epoch(epoch, skip=first * batch_size)
            parts.scheduler.step(epoch)  # acts only when the schedule is stepped per epoch (DeiT)
            parts.train_model.train()
            batches, t_last = data.clean_errors(loaders.train), time.perf_counter()
            for i in range(first, last):
                t_last = one_step(epoch, i, batches, t_last)
            if last < plan.steps_per_epoch:  # a limit ended the run inside this epoch
                save_checkpoint(Position(epoch, last, progress.step))
                break
            ends_run = (epoch + 1) * plan.steps_per_epoch >= plan.stop_at  # the schedule's end, or --max-epochs
            if loaders.val is not None and ((epoch + 1) % int(cfg["eval_every"]) == 0 or ends_run):
                validate_and_keep_best(
                    parts,
                    loaders.val,
                    cfg,
                    dev,
                    world,
                    epoch,
                    progress,
                    num_classes,
                    out if main else None,
                    emit,
                    say,
                    note_skipped,
                )
            save_checkpoint(Position(epoch + 1, 0, progress.step))
    except diskfull.DiskFull as e:
        raise e.with_intact(_what_is_intact(out, progress.saved_step)) from None
    except data.SampleError as e:
        raise type(e)(
            f"{e}. Training stopped at step {progress.step}; last checkpoint: {last_checkpoint()} "
            "(continue it with --resume once the cause is fixed)"
        ) from None
    finally:
        bar.close()
        train_seconds = time.perf_counter() - t_start
        log.close()

    if progress.skipped_files and main:
        tqdm.write(f"{len(progress.skipped_files)} unreadable image(s) skipped (listed in {out / 'train.log'})")
    return TrainResult(
        out_dir=str(out),
        steps=progress.step,
        epochs_completed=progress.step // plan.steps_per_epoch,
        val_acc1=progress.last_eval.get("acc1"),
        val_acc5=progress.last_eval.get("acc5"),
        val_loss=progress.last_eval.get("loss"),
        best_acc1=progress.best_acc1,
        train_seconds=train_seconds,
        images_per_s=progress.images_seen / train_seconds if train_seconds > 0 else 0.0,
        last_loss=progress.last_loss,
        stopped="completed" if progress.step >= plan.total_steps else plan.stop_reason,
        skipped_files=sorted(progress.skipped_files),
        config=cfg,
    )


def validate_and_keep_best(
    parts: Parts,
    loader,
    cfg: Mapping,
    dev: device.Device,
    world: int,
    epoch: int,
    progress: Progress,
    num_classes: int,
    out: Optional[Path],
    emit,
    say,
    note_skipped,
) -> None:
    """Validate the model (and its EMA, where the recipe asks), log it, and write best.pth when it is the best
    so far (``out`` None: not this process's job). Updates ``progress.last_eval`` and ``progress.best_acc1``."""
    step = progress.step
    with friendly_errors(dev, int(cfg["batch_size"]), "in validation"):
        metrics, skipped = evaluate(parts.model, loader, dev, parts.policy, world)
        note_skipped(skipped)
        progress.last_eval = {"split": "val", "epoch": epoch, "step": step, **metrics}
        emit("eval", progress.last_eval)
        if parts.ema is not None and (cfg.get("ema") or {}).get("validate"):
            ema_metrics, _ = evaluate(parts.ema.module, loader, dev, parts.policy, world)
            emit("eval", {"split": "val_ema", "epoch": epoch, "step": step, **ema_metrics})
    say(f"epoch {epoch}: val acc1 {metrics['acc1']:.2f} %  acc5 {metrics['acc5']:.2f} %  loss {metrics['loss']:.4f}")
    if progress.best_acc1 is None or metrics["acc1"] > progress.best_acc1:
        progress.best_acc1 = metrics["acc1"]
        if out is not None:
            best = {
                "format": CHECKPOINT_FORMAT + "-weights",
                **weights_state(parts, cfg, num_classes),
                "epoch": epoch,
                "step": step,
                "acc1": progress.best_acc1,
            }
            atomic_torch_save(best, out / "best.pth", "the best checkpoint")


# ---------------------------------------------------------------------------------------------
# `kit train`
# ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(recipes.list_recipes())
    parser.add_argument("--recipe", metavar="NAME", help=f"a recipe ({names}) or a JSON recipe file")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    o = parser.add_argument_group("overrides (win over the recipe)")
    o.add_argument("--data", metavar="DIR", help="dataset folder (train/, val/, optional meta/*.txt)")
    o.add_argument("--out", metavar="DIR", help="run folder (default runs/<recipe>)")
    o.add_argument("--epochs", type=int, metavar="N")
    o.add_argument(
        "--batch-size", type=int, metavar="N", help="per process; the global batch is this x the number of processes"
    )
    o.add_argument("--lr", type=float, help="base learning rate, scaled by global batch / optimizer.lr_base_batch")
    o.add_argument(
        "--unscale-lr", action="store_true", help="use --lr (or the recipe's lr) as is, without batch scaling"
    )
    o.add_argument("--device", metavar="DEV", help="auto, cpu, cuda[:N], sdaa[:N], mps (default auto)")
    o.add_argument(
        "--amp",
        nargs="?",
        const="auto",
        choices=AMP_CHOICES,
        metavar="MODE",
        help="mixed precision: none, auto, fp16 or bf16 (bare --amp = auto)",
    )
    o.add_argument("--seed", type=int, metavar="N")
    o.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps (ModelZoo alignment: 100)")
    o.add_argument(
        "--max-epochs",
        type=int,
        metavar="N",
        help="stop (and validate) after N epochs, keeping the schedule of --epochs",
    )
    o.add_argument("--save-every", type=int, metavar="K", help="also write last.pth every K steps")
    o.add_argument("--resume", nargs="?", const=True, metavar="CKPT", help="continue from <out>/last.pth (or CKPT)")
    o.add_argument("--overwrite", action="store_const", const=True, help="start afresh in an --out that holds a run")
    o.add_argument("--workers", type=int, metavar="N", help="data-loading worker processes")
    o.add_argument("--compile", action="store_const", const=True, help="torch.compile the model")
    o.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None, help="model EMA on/off")
    o.add_argument("--skip-corrupt", action="store_const", const=True, help="skip and count unreadable images")
    o.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bar")
    o.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any recipe value, e.g. optimizer.weight_decay=0.1",
    )


def config_from_args(args: argparse.Namespace) -> dict:
    if not args.recipe:
        raise UserError(f"--recipe is required; one of: {', '.join(recipes.list_recipes())} (or a JSON recipe file)")
    overrides = {flag: getattr(args, flag, None) for flag in recipes.FLAG_KEYS}
    overrides["unscale_lr"] = args.unscale_lr
    return recipes.resolve(args.recipe, overrides, args.set)


def run(args: argparse.Namespace) -> int:
    if args.list:
        width = max(len(n) for n in recipes.list_recipes())
        for name in recipes.list_recipes():
            print(f"{name:<{width}}  {recipes.describe(name)}")
        return 0
    cfg = config_from_args(args)
    with distributed(cfg["run"]["device"]):
        rank = dist_info()[0]
        result = train(cfg)
    if rank == 0:
        acc = (
            f"val acc1 {result.val_acc1:.2f} % (best {result.best_acc1:.2f} %)"
            if result.val_acc1 is not None
            else "no validation"
        )
        print(
            f"done ({result.stopped}): {result.steps} steps, {acc}, last loss {result.last_loss}, "
            f"{result.train_seconds:.1f} s, {result.images_per_s:.1f} images/s; run folder {result.out_dir}"
        )
    return 0
