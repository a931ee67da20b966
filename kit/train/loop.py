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
uninterrupted run (tests/train/test_train.py kills one to check). On GPUs, kernels that are not
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
import math
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from kit.config import recipes
from kit.core import diskfull, seeding
from kit.core.atomic import atomic_torch_save
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder
from kit.data import loaders as data
from kit.device import shim as device
from kit.train.checkpoint import CHECKPOINT_FORMAT, restore, starting_point, weights_state, what_is_intact
from kit.train.distributed import dist_info, global_mean, keep_alive
from kit.train.parts import Parts, build_parts
from kit.train.report import report_start
from kit.train.runlog import RunLog
from kit.train.state import Plan, Position, Progress, Run, TrainResult

__all__ = ["MAX_SKIPPED_IN_A_ROW", "NonFiniteLoss", "friendly_errors", "train_step", "evaluate", "train",
           "start_run", "run_epochs", "stop_if_not_finite", "validate_and_keep_best"]

#: With a grad scaler, a non-finite loss skips the step; this many in a row stop the run.
MAX_SKIPPED_IN_A_ROW = 20


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


# ---------------------------------------------------------------------------------------------
# The run: set up, then epochs of steps, each epoch ending in validation and a checkpoint
# ---------------------------------------------------------------------------------------------


def train(
    config: Mapping | str,
    callbacks: Iterable[Any] = (),
    *,
    resolved: bool = False,
    dev: Optional[device.Device] = None,
) -> TrainResult:
    """Train as ``config`` (a recipe dict or a recipe name) says; return what came of it.

    ``callbacks``: objects with ``on_step(record)`` and/or ``on_eval(record)``, called on rank 0
    with the same dicts that go to metrics.jsonl.

    The recipe is checked first (:func:`kit.config.recipes.resolve` runs :func:`kit.config.checks.check_recipe`): a
    bad value raises a one-line :class:`UserError` before the folder or its lock exists. ``resolved=True`` says
    ``config`` is what ``resolve`` returned, unchanged, so it is not resolved and checked a second time
    (``kit train`` resolves its flags once); ``dev``: the device, already resolved (and, under torchrun, bound to
    this process's card by :func:`kit.train.distributed.distributed`), else it is resolved from the recipe here.
    The run folder is locked for the whole call (:mod:`kit.core.runlock`; by rank 0, the only one that
    writes it), before anything in it is read, written or deleted: a second run into it, started at
    the same moment or later, fails at once instead of interleaving its logs with this one's.
    """
    cfg = config if resolved else recipes.resolve(config)
    with hold_run_folder(cfg["run"]["out"], "kit train", enabled=dist_info()[0] == 0):
        return run_epochs(start_run(cfg, callbacks, dev))


def start_run(cfg: dict, callbacks: Iterable[Any] = (), dev: Optional[device.Device] = None) -> Run:
    """The run ``cfg`` describes, ready for its first step: data, parts, where it starts, the run folder."""
    rank, local_rank, world = dist_info()
    if dev is None:
        dev = device.resolve(cfg["run"]["device"])
        if world > 1:
            dev = dev.set_device(local_rank)
    out, seed, batch_size = Path(cfg["run"]["out"]), int(cfg["seed"]), int(cfg["batch_size"])
    ckpt, ckpt_path = starting_point(cfg["run"], out, rank == 0)
    loaders = data.build_loaders(
        cfg["data"],
        batch_size=batch_size,
        eval_batch_size=cfg.get("eval_batch_size"),
        seed=seed,
        rank=rank,
        world_size=world,
        skip_corrupt=bool(cfg["run"]["skip_corrupt"]),
        with_val=bool(cfg.get("eval_every")),
        pin_memory=dev.type == "cuda",
    )
    num_classes = int(cfg["model"].get("num_classes") or loaders.num_classes)
    if num_classes < loaders.num_classes:
        raise UserError(
            f"the recipe's model has {num_classes} classes but {loaders.train_source} has {loaders.num_classes}"
        )
    plan = Plan.of(int(cfg["epochs"]), loaders.steps_per_epoch, cfg["run"])
    parts = build_parts(cfg, dev, num_classes, plan.steps_per_epoch, world)
    pos, progress, log_offsets = Position(), Progress(step=0), None
    if ckpt is not None:
        restore(parts, ckpt, ckpt_path, cfg, num_classes, dev, rank == 0)
        pos = Position(**ckpt["position"])
        progress = Progress(
            step=pos.step, best_acc1=ckpt.get("best_acc1"), skipped_files=set(ckpt.get("skipped_files", []))
        )
        if ckpt_path.resolve().parent == out.resolve():
            log_offsets, progress.saved_step = ckpt["log_offsets"], pos.step
    run = Run(cfg=cfg, dev=dev, rank=rank, world=world, out=out, loaders=loaders, num_classes=num_classes, plan=plan,
              parts=parts, start=pos, progress=progress, log=RunLog(out, enabled=rank == 0, resume_offsets=log_offsets),
              callbacks=list(callbacks))
    report_start(run, ckpt, ckpt_path)
    return run


def run_epochs(run: Run) -> TrainResult:
    """The loop: from ``run.start`` to the plan's end, each step inline, each epoch ending in a checkpoint."""
    cfg, dev, parts, plan, progress, loaders = run.cfg, run.dev, run.parts, run.plan, run.progress, run.loaders
    seed, save_every = int(cfg["seed"]), int(cfg["run"]["save_every"] or 0)
    run.bar = tqdm(total=plan.stop_at, initial=min(progress.step, plan.stop_at), desc=cfg["name"], unit="step",
                   dynamic_ncols=True, disable=not (run.main and cfg["run"]["progress"]))
    t_start = time.perf_counter()
    try:
        for epoch in range(run.start.epoch, int(cfg["epochs"])):
            first = run.start.batch if epoch == run.start.epoch else 0
            last = min(plan.steps_per_epoch, first + max(0, plan.stop_at - progress.step))  # batches [first, last)
            if first < plan.steps_per_epoch and progress.step >= plan.stop_at:
                break  # (a resumed epoch with all its batches done still gets its validation below)
            loaders.train_sampler.set_epoch(epoch, skip=first * run.batch_size)
            parts.scheduler.step(epoch)  # acts only when the schedule is stepped per epoch (DeiT)
            parts.train_model.train()
            batches, t_last = data.clean_errors(loaders.train), time.perf_counter()
            for i in range(first, last):
                # -- one step: batch i of this epoch, optimizer step progress.step ----------------------
                step = progress.step
                with friendly_errors(dev, run.batch_size, f"at step {step}"):
                    images, labels, skipped = next(batches)
                    run.note_skipped(skipped)
                    parts.scheduler.step_update(step)  # the lr of this step (per-iteration schedules)
                    seeding.seed_all(seeding.derive_seed(seed, run.rank, step) % 2**63, dev)  # mixup, drop-path...
                    images = images.to(dev.torch_device, non_blocking=True)
                    labels = labels.to(dev.torch_device, non_blocking=True)
                    loss, grad_norm, stepped = train_step(parts, images, labels, dev)
                    if parts.ema is not None and stepped:
                        parts.ema.update(parts.model, step=step)
                    progress.last_loss = loss_value = global_mean(loss, run.world)
                now = time.perf_counter()
                record = {
                    "step": step,
                    "epoch": epoch,
                    "iter": i,
                    "loss": loss_value,
                    "lr": parts.optimizer.param_groups[0]["lr"],
                    "images_per_s": run.global_batch / max(now - t_last, 1e-9),
                    "time": now - t_last,
                    "grad_norm": grad_norm,
                }
                if not stepped:
                    record["skipped_step"] = True
                t_last = now
                run.log_step(record)
                stop_if_not_finite(run, record)
                progress.step += 1
                if save_every and progress.step % save_every == 0:
                    run.save_checkpoint(Position(epoch, i + 1, progress.step))
            if last < plan.steps_per_epoch:  # a limit ended the run inside this epoch
                run.save_checkpoint(Position(epoch, last, progress.step))
                break
            ends_run = (epoch + 1) * plan.steps_per_epoch >= plan.stop_at  # the schedule's end, or --max-epochs
            if loaders.val is not None and ((epoch + 1) % int(cfg["eval_every"]) == 0 or ends_run):
                validate_and_keep_best(run, epoch)
            run.save_checkpoint(Position(epoch + 1, 0, progress.step))
    except diskfull.DiskFull as e:
        raise e.with_intact(what_is_intact(run.out, progress.saved_step)) from None
    except data.SampleError as e:
        raise type(e)(
            f"{e}. Training stopped at step {progress.step}; last checkpoint: {run.last_checkpoint()} "
            "(continue it with --resume once the cause is fixed)"
        ) from None
    finally:
        run.bar.close()
        train_seconds = time.perf_counter() - t_start
        run.log.close()
    if progress.skipped_files and run.main:
        tqdm.write(f"{len(progress.skipped_files)} unreadable image(s) skipped (listed in {run.out / 'train.log'})")
    return run.result(train_seconds)


def stop_if_not_finite(run: Run, record: Mapping) -> None:
    """Raise :class:`NonFiniteLoss` when the step's loss is NaN or infinite (with a grad scaler, which skips such
    steps itself: after :data:`MAX_SKIPPED_IN_A_ROW` of them in a row)."""
    progress, scaler, loss = run.progress, run.parts.scaler, record["loss"]
    progress.bad_in_a_row = 0 if math.isfinite(loss) else progress.bad_in_a_row + 1
    if progress.bad_in_a_row and (scaler is None or progress.bad_in_a_row >= MAX_SKIPPED_IN_A_ROW):
        raise NonFiniteLoss(
            f"the loss is {loss} at step {record['step']} (epoch {record['epoch']}, iteration {record['iter']})"
            + (f", {progress.bad_in_a_row} steps in a row" if scaler is not None else "")
            + f"; training stopped. Last good checkpoint: {run.last_checkpoint()}. Lower --lr, keep gradient "
            "clipping on (--set grad_clip=1.0), or train in fp32 (--amp none)"
        )


def validate_and_keep_best(run: Run, epoch: int) -> None:
    """Validate the model (and its EMA, where the recipe asks), log it, and write best.pth (rank 0) when it is
    the best so far. Updates ``run.progress.last_eval`` and ``run.progress.best_acc1``."""
    cfg, parts, progress, step, loader = run.cfg, run.parts, run.progress, run.progress.step, run.loaders.val
    with friendly_errors(run.dev, run.batch_size, "in validation"):
        metrics, skipped = evaluate(parts.model, loader, run.dev, parts.policy, run.world)
        run.note_skipped(skipped)
        progress.last_eval = {"split": "val", "epoch": epoch, "step": step, **metrics}
        run.emit("eval", progress.last_eval)
        if parts.ema is not None and (cfg.get("ema") or {}).get("validate"):
            ema_metrics, _ = evaluate(parts.ema.module, loader, run.dev, parts.policy, run.world)
            run.emit("eval", {"split": "val_ema", "epoch": epoch, "step": step, **ema_metrics})
    run.say(f"epoch {epoch}: val acc1 {metrics['acc1']:.2f} %  acc5 {metrics['acc5']:.2f} %  "
            f"loss {metrics['loss']:.4f}")
    if progress.best_acc1 is None or metrics["acc1"] > progress.best_acc1:
        progress.best_acc1 = metrics["acc1"]
        if run.main:
            best = {
                "format": CHECKPOINT_FORMAT + "-weights",
                **weights_state(parts, cfg, run.num_classes),
                "epoch": epoch,
                "step": step,
                "acc1": progress.best_acc1,
            }
            atomic_torch_save(best, run.out / "best.pth", "the best checkpoint")


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
