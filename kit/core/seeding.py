"""Seeds and RNG state: every random generator the kit touches, in one place.

Three families of generators feed a training run: Python's ``random`` and numpy's (timm's and
torchvision's transforms draw from them), torch's CPU generator (crops, Mixup, drop-path, init) and
the accelerator's own (dropout and drop-path on the card). The kit never lets them run free:

* :func:`derive_seed` turns ``(seed, epoch, index)`` or ``(seed, rank, step)`` into a well-mixed seed,
  so a sample's augmentation or a step's Mixup draw depends on its key and nothing else;
* :func:`seed_cpu_generators` re-seeds the three CPU generators before every sample (cheap);
* :func:`seed_all` seeds those and the accelerator's, before building the model and before every step;
* :func:`rng_state` / :func:`set_rng_state` save and restore all of them in a checkpoint, as tensors and
  plain containers, so a checkpoint loads with ``weights_only=True`` and a resumed run draws what an
  uninterrupted one would have drawn.

The accelerator is reached through the device shim's ``module`` (``torch.cuda`` or ``torch.sdaa``:
the same ``manual_seed_all`` / ``get_rng_state_all`` API), so this file needs no device logic of its own.
"""

from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (splitmix64 applied part by part); same parts, same seed.

    Cheap (a few microseconds), since it runs once per sample and once per step.
    """
    h = 0x9E3779B97F4A7C15
    for part in parts:
        z = (h + (int(part) & _MASK64) * 0xBF58476D1CE4E5B9 + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = z ^ (z >> 31)
    return h >> 1


def seed_cpu_generators(seed: int) -> None:
    """Seed python's, numpy's and torch's CPU generators (what timm's and torchvision's transforms draw from).

    Cheap enough to run before every sample: ``torch.default_generator.manual_seed`` rather than
    ``torch.manual_seed``, which also visits every accelerator.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed % 2**63)


def _accelerator(device: Any) -> Optional[Any]:
    """The ``torch.cuda``-like namespace of ``device`` (a kit Device) when it has generators of its own."""
    if device is None or getattr(device, "type", "cpu") not in ("cuda", "sdaa"):
        return None
    return device.module


def seed_all(seed: int, device: Any = None) -> None:
    """Seed python, numpy, torch and ``device``'s generators (a :class:`kit.device.shim.Device`, or None: CPU only)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    accelerator = _accelerator(device)
    if accelerator is not None:
        accelerator.manual_seed_all(seed)


def rng_state(device: Any = None) -> dict:
    """Every RNG state, as plain containers and tensors, so it loads with ``weights_only=True``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    accelerator = _accelerator(device)
    if accelerator is not None:
        state["device"] = accelerator.get_rng_state_all()
    return state


def _as_tuples(x: Any) -> Any:
    """Lists back to tuples, deeply (``random.setstate`` wants the tuples that a round trip turned into lists)."""
    if isinstance(x, (list, tuple)):
        return tuple(_as_tuples(v) for v in x)
    return x


def set_rng_state(state: dict, device: Any = None) -> None:
    """Restore what :func:`rng_state` saved (the accelerator's part only on a device that has one)."""
    random.setstate(_as_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    accelerator = _accelerator(device)
    if "device" in state and accelerator is not None:
        accelerator.set_rng_state_all(state["device"])
