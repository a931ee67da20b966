"""The parts a recipe builds, each from its library: model, optimizer, schedule, loss, precision, EMA.

timm builds the model, the optimizer (no weight decay on norms, biases, position embeddings and
relative-position tables), the cosine schedule with warm-up, Mixup/CutMix, the losses and the EMA; the device
shim (:mod:`kit.device.shim`) supplies the precision policy and the grad scaler. This module only reads the
recipe's numbers into their calls, so that the loop (:mod:`kit.train.loop`) and notebook 4 build the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3

from kit import models
from kit.config import recipes
from kit.config.checks import mixup_enabled
from kit.core import seeding
from kit.core.errors import UserError
from kit.device import shim as device
from kit.train import perturb

__all__ = ["build_model", "use_fused_optimizer", "FUSED_OPTIMIZERS", "build_optimizer", "warmup_start",
           "build_scheduler", "build_criterion", "Parts", "build_parts"]


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
    fused = opt_cfg.get("fused", "auto")  # (its allowed values are the recipe schema's to check)
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
    """timm's cosine schedule with linear warm-up, in steps (or in epochs where the recipe says so).

    Cosine is the only schedule the kit wires; the recipe schema refuses any other ``schedule.sched``."""
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
    """(mixup_fn or None, loss): SoftTargetCrossEntropy after Mixup/CutMix, else label smoothing.

    Mixup/CutMix mixes pairs within a batch: the recipe's cross-check (:func:`kit.config.checks.mixup_enabled`
    decides when it is on) requires an even batch."""
    smoothing = float(cfg.get("label_smoothing") or 0.0)
    if mixup_enabled(cfg):
        return Mixup(**cfg["mixup"], label_smoothing=smoothing, num_classes=num_classes), SoftTargetCrossEntropy()
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
