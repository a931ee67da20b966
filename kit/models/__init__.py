"""The kit's models: HiViT (ours, built from timm.layers) and CaiT (timm's), plus workshop sizes.

Importing this package registers every kit model in timm's registry, so the usual
``timm.create_model(name, ...)`` builds them; nothing here wraps or replaces timm's API.
"""

from __future__ import annotations

import argparse

import timm
import torch

from kit.models import cait, hivit  # noqa: F401  (registration side effects)

#: The families the kit teaches, as timm name patterns.
FAMILIES = {"hivit": "hivit_*", "cait": "cait_*"}


def list_kit_models() -> list[str]:
    """Every registered HiViT and CaiT model name (timm's CaiT included), sorted."""
    names: set[str] = set()
    for pattern in FAMILIES.values():
        names.update(timm.list_models(pattern))
    return sorted(names)


def count_parameters(name: str, **kwargs) -> int:
    """Parameter count of ``timm.create_model(name, **kwargs)``, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = timm.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'hivit*'")


def run(args: argparse.Namespace) -> int:
    import fnmatch

    names = [n for n in list_kit_models() if fnmatch.fnmatch(n, args.pattern)]
    width = max((len(n) for n in names), default=10)
    print(f"{'model':<{width}}  {'params':>12}  input")
    for name in names:
        cfg = timm.get_pretrained_cfg(name)
        size = "x".join(str(s) for s in cfg.input_size[1:]) if cfg is not None else "?"
        print(f"{name:<{width}}  {count_parameters(name):>12,}  {size}")
    return 0
