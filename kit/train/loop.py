"""One training loop for HiViT and CaiT, to be read top to bottom (``kit train`` runs it: :mod:`kit.train.command`).

    kit train --recipe workshop_hivit                      # 32x32 digits, CPU, about a minute
    kit train --recipe cait_s24_in1k --data /data/imagenet --max-steps 100    # ModelZoo alignment run
    torchrun --nproc-per-node 8 -m kit train --recipe hivit_base_in1k --data /data/imagenet

From Python (a notebook draws a live loss curve from ``on_step``)::

    from kit.config.recipes import resolve
    from kit.train import train
    result = train(resolve("workshop_hivit", {"epochs": 3}), callbacks=[my_plot])

What is whose: timm builds the model, the optimizer, the schedule, Mixup/CutMix, the losses and the
EMA (:mod:`kit.train.parts` reads the recipe into their calls); torchvision reads the images
(:mod:`kit.data.loaders`); the device shim (:mod:`kit.device.shim`) supplies autocast, the grad scaler and
the DDP backend; the recipe (:mod:`kit.config.recipes`) holds every number. This file only wires them
together in one loop.

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

import contextlib
import json
import math
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
from tqdm.auto import tqdm

import kit
from kit.config import recipes
from kit.core import diskfull, seeding
from kit.core.atomic import atomic_torch_save, atomic_write_text
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder
from kit.data import loaders as data
from kit.device import shim as device
from kit.train.checkpoint import (
    CHECKPOINT_FORMAT,
    checkpoints_bytes,
    restore,
    starting_point,
    weights_state,
    what_is_intact,
)
from kit.train.distributed import dist_info, global_mean, keep_alive
from kit.train.parts import Parts, build_parts, warmup_start
from kit.train.runlog import RunLog

__all__ = ["MAX_SKIPPED_IN_A_ROW", "TrainResult", "NonFiniteLoss", "Position", "friendly_errors", "train_step",
           "evaluate", "Plan", "Progress", "train", "validate_and_keep_best"]

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
        dist.all_reduce(keep_alive(sums))
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
    ckpt, ckpt_path = starting_point(run, out, main)

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
        raise e.with_intact(what_is_intact(out, progress.saved_step)) from None
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
