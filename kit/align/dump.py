"""``kit align dump``: one deterministic training step of a model, every module and gradient recorded.

The step is a training step without the optimizer: the model in train mode with every dropout and
drop-path rate set to 0 (:func:`kit.align.record.disable_dropout`), the fixed batch of
:mod:`kit.align.batch`, the forward pass under the device's autocast for ``--amp``, plain
cross-entropy (no label smoothing or Mixup, which are not what a port gets wrong), and one backward
pass. Same weights, same batch, same code path: what differs between two dumps is the device, the
precision and the port.

Weights: ``--checkpoint`` (a kit run's ``last.pth`` / ``best.pth``, or any layout
:func:`kit.models.create` reads), else the model's initialisation under ``--seed``, which is the same
on two machines only with the same torch and timm. The dump records a SHA-256 of the weights, so a
comparison says when the two sides did not start from the same ones.

Precision: on CUDA the dump turns TF32 off for its duration (PyTorch allows it for convolutions by
default), so an fp32 dump is fp32 throughout. ``--amp bf16`` on a CPU without native bf16 runs bf16
autocast anyway (the trainer switches it off there because it is slow; one batch does not care).
An autocast that wants a grad scaler (fp16) gets the scaler's first-step scale, 2**16, on the loss,
and the recorded gradients are divided by it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import platform
import socket
import time
from pathlib import Path
from typing import Iterator, Optional

import torch
import torch.nn.functional as F

import kit
from kit.align.batch import data_config, fixed_batch, val_split
from kit.align.dumpio import FULL_TENSORS_MAX, write_dump
from kit.align.record import Recorder, disable_dropout
from kit.align.stats import float64_works
from kit.align.values import json_number
from kit.core.seeding import seed_all
from kit.device import shim as kit_device
from kit.models import create

__all__ = [
    "LOSS_SCALE",
    "amp_policy",
    "amp_dtype",
    "exact_fp32",
    "weights_sha256",
    "environment",
    "training_step",
    "dump",
]

#: What GradScaler multiplies the loss by at its first step; an fp16 dump does the same.
LOSS_SCALE = 2.0**16


def amp_policy(dev: kit_device.Device, amp: str) -> kit_device.AmpPolicy:
    """The device's policy for ``amp``, except that an explicit bf16 on a CPU is honoured even where it is slow."""
    policy = dev.amp_policy(amp)
    if amp == "bf16" and dev.type == "cpu" and not policy.enabled:
        return kit_device.AmpPolicy(True, torch.bfloat16, False, "forced for the dump: this CPU has no native bf16")
    return policy


def amp_dtype(policy: kit_device.AmpPolicy) -> Optional[str]:
    """The autocast type as the tolerance table names it: bf16, fp16, half (SDAA's own choice) or None."""
    if not policy.enabled:
        return None
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(policy.dtype, "half")


@contextlib.contextmanager
def exact_fp32(dev: kit_device.Device) -> Iterator[None]:
    """TF32 off on CUDA while the block runs (restored afterwards); nothing elsewhere."""
    if dev.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def weights_sha256(model: torch.nn.Module) -> str:
    """A digest of every parameter and buffer, by name, as stored (on the CPU, before the move)."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode("utf-8"))
        digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().data)
    return digest.hexdigest()


def environment(dev: kit_device.Device) -> dict:
    """The software and hardware a dump ran on, in the shape of a run's ``config.json`` environment."""
    versions = {name: importlib.import_module(name).__version__ for name in ("torch", "torchvision", "timm", "numpy")}
    return {"kit": kit.__version__, "python": platform.python_version(), **versions, "device": dev.describe(),
            "torch_threads": torch.get_num_threads(), "host": socket.gethostname()}


def training_step(model, images, labels, dev, policy, recorder: Recorder, loss_scale: float) -> float:
    """Forward (recorded), cross-entropy, backward (gradients recorded); returns the loss."""
    model.train()
    recorder.add("input", "<input>", images)
    with recorder.gradient_hooks(model):
        with recorder.forward_hooks(model), dev.autocast(policy):
            loss = F.cross_entropy(model(images), labels)
        recorder.add("loss", "<loss>", loss)
        (loss * loss_scale).backward()
    return float(loss.detach())


def dump(model: str, data: str | Path, out: str | Path, *, checkpoint: Optional[str] = None, device: str = "auto",
         amp: str = "none", batch_size: int = 8, seed: int = 0, full_tensors_max: int = FULL_TENSORS_MAX,
         img_size: Optional[int] = None, recipe: Optional[str] = None, model_kwargs: Optional[dict] = None,
         data_overrides: Optional[dict] = None) -> dict:
    """Run the recorded step and write the dump folder ``out``; return its index.

    ``model_kwargs`` (passed to :func:`kit.models.create`) and ``data_overrides`` (keys of the preprocessing,
    e.g. ``mean``/``std``) let a notebook plant a port bug on one side, as notebook 6 does.
    """
    started = time.perf_counter()
    dev = kit_device.resolve(device)
    policy = amp_policy(dev, amp)
    split = val_split(data)
    seed_all(seed, dev)
    kwargs = dict(model_kwargs or {})
    net = create(model, num_classes=len(split.classes), img_size=img_size, checkpoint=checkpoint, **kwargs)
    cfg = {**data_config(model, net.pretrained_cfg or {}, recipe, img_size), **(data_overrides or {})}
    batch = fixed_batch(data, batch_size, cfg, split)
    dropouts = disable_dropout(net)
    weights = weights_sha256(net)
    net.to(dev.torch_device)
    stats_on = dev.torch_device if float64_works(dev.torch_device) else torch.device("cpu")
    loss_scale = LOSS_SCALE if policy.enabled and policy.use_scaler else 1.0
    recorder = Recorder(stats_on, full_tensors_max, 1.0 / loss_scale)
    with exact_fp32(dev):
        loss = training_step(net, batch.images.to(dev.torch_device), batch.labels.to(dev.torch_device), dev, policy,
                             recorder, loss_scale)
    entries, tensors = recorder.finish()
    weights_file = Path(checkpoint).name if checkpoint else None
    model_part = {"name": model, "num_classes": len(split.classes), "checkpoint": weights_file, "kwargs": kwargs}
    recipe_part = {"model": model_part,
                   "data": cfg, "batch_size": batch_size, "seed": seed, "amp": amp, "loss": "cross_entropy"}
    derived = {"global_batch": batch_size, "precision": policy.describe(), "loss_scale": loss_scale,
               "weights_sha256": weights, **batch.digests(), "dropout_modules_zeroed": dropouts}
    index = {
        "model": model, "module_tree": [name for name, _ in net.named_modules()],
        "parameters": [name for name, _ in net.named_parameters()],
        "amp": {"enabled": policy.enabled, "dtype": amp_dtype(policy), "policy": policy.describe()},
        "loss": json_number(loss),
        "batch": {"source": batch.source, "files": batch.files, "labels": batch.labels.tolist()},
        "stats_computed_on": f"{stats_on} in float64", "full_tensors_max": full_tensors_max,
        "entries": entries, "no_grad": recorder.no_grad,
        "config": {"recipe": recipe_part, "derived": derived, "environment": environment(dev)},
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    write_dump(out, index, tensors)
    return index
