"""Running a model once to read it: an example input, eval mode, forward hooks that never outlive the reading.

Every reading in :mod:`kit.anatomy` (FLOPs, shapes, attention, LayerScale) runs one forward with hooks on the
real modules. These helpers make that forward harmless to a model in the middle of training: its mode is put
back, the hooks are removed even on error, and the random input leaves the global random state alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

__all__ = ["evaluating", "example_input", "removing_hooks", "keep_first"]


@contextmanager
def removing_hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout, no drop-path) for the block; the model's own mode is put back after, even on
    error, so that inspecting a model in the middle of training does not change how it trains."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def keep_first(store: dict, key: str, pick) -> Any:
    """A forward hook that stores ``pick(args, output)`` (detached) under ``key`` on the first call only.
    It returns None, so the module's output is left alone."""

    def hook(module, args, output) -> None:
        if key not in store:
            value = pick(args, output)
            store[key] = value.detach() if isinstance(value, torch.Tensor) else value

    return hook


def example_input(model: nn.Module, img_size: int | Sequence[int] | None = None, batch: int = 1) -> torch.Tensor:
    """A random image batch of the size the model was built for (or ``img_size``), on its device.

    The built size is the patch embedding's ``img_size`` (timm's PatchEmbed), else the pretrained cfg's.
    The batch is drawn from its own generator seeded with 0, so every call gives the same images and the
    global random state is left alone.
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    chans, *hw = cfg.get("input_size", (3, 224, 224))
    if img_size is not None:
        hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    elif getattr(getattr(model, "patch_embed", None), "img_size", None) is not None:
        hw = tuple(model.patch_embed.img_size)
    size = (getattr(model, "in_chans", chans), *hw)
    param = next(model.parameters(), None)
    device = param.device if param is not None else "cpu"
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, *size, generator=generator).to(device)
