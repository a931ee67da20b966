"""The kit's models: HiViT (ours, built from timm.layers) and CaiT (timm's), plus workshop sizes.

Importing this package registers every kit model in timm's registry, so the usual
``timm.create_model(name, ...)`` builds them. :func:`create` is the one door the kit itself uses (the
trainer, ``kit anatomy``, the notebooks, the benchmarks): timm's ``create_model`` plus the two things
every caller needs, DeiT's CaiT names and weights from a local file, with errors a user can act on.

    hivit.py    HiViT, mmpretrain-compatible names, the masked forward
    hivit_weights.py  an mmpretrain HiViT checkpoint mapped onto the kit's names
    cait.py     timm's CaiT re-registered offline, DeiT names, the workshop CaiT
    weights.py  reading checkpoints of any common layout, strict loading, the never-download rule
"""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path
from typing import Any, Optional

import timm
import torch

from kit.core.errors import UserError
from kit.models import cait, hivit, weights  # noqa: F401  (registration side effects)

#: The families the kit teaches, as timm name patterns.
FAMILIES = {"hivit": "hivit_*", "cait": "cait_*"}
#: Each family's hook that maps foreign weight names onto its modules (timm's ``pretrained_filter_fn``).
CHECKPOINT_FILTERS = {"hivit": hivit.checkpoint_filter_fn, "cait": cait.checkpoint_filter_fn}


def family(model: torch.nn.Module) -> Optional[str]:
    """The kit family a timm-built model belongs to (by its registered architecture name), or None."""
    arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or ""
    return next((f for f, pattern in FAMILIES.items() if fnmatch.fnmatch(arch, pattern)), None)


def load_weights(model: torch.nn.Module, checkpoint: Any, strict: bool = True) -> list[str]:
    """:func:`kit.models.weights.load_weights` with the model's family filter passed in (see there)."""
    return weights.load_weights(model, checkpoint, strict, filter_fn=CHECKPOINT_FILTERS.get(family(model) or ""))


def list_kit_models() -> list[str]:
    """Every registered HiViT and CaiT model name (timm's CaiT included), sorted."""
    names: set[str] = set()
    for pattern in FAMILIES.values():
        names.update(timm.list_models(pattern))
    return sorted(names)


def timm_name(name: str) -> str:
    """timm's name for the model ``name`` (a timm name, or a DeiT CaiT name such as ``cait_S24_224``): the one
    rule for model names, which :func:`create` builds by and the recipe check (:mod:`kit.config`) asks.
    An unknown name is a :class:`UserError` listing the kit's models."""
    if timm.is_model(name):
        return name
    try:
        return cait.timm_name(name)
    except UserError:
        raise UserError(f"unknown model {name!r}; the kit's models: {', '.join(list_kit_models())}") from None


def create(
    name: str,
    *,
    num_classes: Optional[int] = None,
    img_size: Optional[int] = None,
    drop_path_rate: Optional[float] = None,
    checkpoint: str | Path | None = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """``timm.create_model`` for a kit model (or a DeiT CaiT name such as ``cait_S24_224``).

    Arguments left as None keep the model's defaults. ``checkpoint``: a local weights file of any
    layout :func:`kit.models.weights.read_state_dict` reads, loaded strictly (the head may differ).
    An unknown name or arguments the model cannot take are a :class:`UserError`.
    """
    name = timm_name(name)
    given = {"num_classes": num_classes, "img_size": img_size, "drop_path_rate": drop_path_rate}
    kwargs.update({k: v for k, v in given.items() if v is not None})
    try:
        model = timm.create_model(name, **kwargs)
    except (TypeError, ValueError, AssertionError) as e:
        raise UserError(f"cannot build {name} with {kwargs}: {e}") from e
    if checkpoint:
        load_weights(model, checkpoint)
    return model


def count_parameters(name: str, **kwargs) -> int:
    """Parameter count of ``timm.create_model(name, **kwargs)``, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = timm.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'hivit*'")


def run(args: argparse.Namespace) -> int:
    names = [n for n in list_kit_models() if fnmatch.fnmatch(n, args.pattern)]
    width = max((len(n) for n in names), default=10)
    print(f"{'model':<{width}}  {'params':>12}  input")
    for name in names:
        cfg = timm.get_pretrained_cfg(name)
        size = "x".join(str(s) for s in cfg.input_size[1:]) if cfg is not None else "?"
        print(f"{name:<{width}}  {count_parameters(name):>12,}  {size}")
    return 0
