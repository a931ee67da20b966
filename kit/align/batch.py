"""The one fixed batch of an alignment dump: the same images, decoded and preprocessed the same way everywhere.

The batch is the first N images of the ``val`` split in the order its list (or ``ImageFolder``) gives
them, with their labels, through the *evaluation* transform: resize and centre crop, no random
augmentation, so it is a function of the files alone. It is built on the CPU, in float32, before it
goes to the device, so a port's device never touches the preprocessing.

The preprocessing is the recipe's when there is one: the one named, or else the registered recipe
that trains this model (``workshop_hivit`` for ``hivit_workshop_32``, ``hivit_base_in1k`` for
``hivit_base_patch16_224``). Without a recipe it is the model's timm configuration (input size, crop
fraction, interpolation) with timm's ImageNet mean and std.

Two digests travel with the dump so that a comparison can tell "the model differs" from "it was fed
something else": ``batch_sha256`` over the relative paths and labels, and ``input_sha256`` over the
preprocessed float32 batch (another Pillow or torchvision version can resize differently).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision.datasets.folder import pil_loader

from kit.config import recipes
from kit.core.errors import UserError
from kit.data.loaders import find_split
from kit.data.transforms import build_transform

__all__ = ["Batch", "recipe_for", "data_config", "val_split", "fixed_batch"]


@dataclass
class Batch:
    images: torch.Tensor  # (N, 3, H, W) float32 on the CPU
    labels: torch.Tensor  # (N,) int64
    files: list[str]  # relative to the data folder
    classes: list[str]
    source: str

    def digests(self) -> dict:
        listing = "".join(f"{f}\t{int(label)}\n" for f, label in zip(self.files, self.labels))
        return {
            "batch_sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(),
            "input_sha256": hashlib.sha256(self.images.contiguous().numpy().tobytes()).hexdigest(),
        }


def recipe_for(model: str) -> Optional[str]:
    """The one registered recipe that trains ``model``, or None (none, or more than one)."""
    found = [name for name, recipe in recipes.RECIPES.items() if recipe["model"]["name"].lower() == model.lower()]
    return found[0] if len(found) == 1 else None


def data_config(model: str, pretrained_cfg: Mapping, recipe: Optional[str] = None,
                img_size: Optional[int] = None) -> dict:
    """The evaluation preprocessing (``kit.data.transforms.build_transform``'s data section) for ``model``.

    ``recipe``: a registered name or a JSON recipe file; None looks for the recipe of ``model``.
    """
    recipe = recipe or recipe_for(model)
    if recipe:
        loaded = recipes.load_recipe(recipe) if recipe.endswith(".json") else recipes.get_recipe(recipe)
        data = loaded["data"]
        cfg = {"img_size": data["img_size"], "mean": data.get("mean", IMAGENET_DEFAULT_MEAN),
               "std": data.get("std", IMAGENET_DEFAULT_STD), "eval": dict(data.get("eval", {}))}
    else:
        evaluation = {"crop_pct": pretrained_cfg.get("crop_pct") or 0.875,
                      "interpolation": pretrained_cfg.get("interpolation") or "bicubic"}
        cfg = {"img_size": int(pretrained_cfg.get("input_size", (3, 224, 224))[-1]), "mean": IMAGENET_DEFAULT_MEAN,
               "std": IMAGENET_DEFAULT_STD, "eval": evaluation}
    if img_size:
        cfg["img_size"] = int(img_size)
    cfg["mean"], cfg["std"] = [float(v) for v in cfg["mean"]], [float(v) for v in cfg["std"]]
    cfg["recipe"] = recipe
    return cfg


def val_split(data_dir: str | Path):
    """The ``val`` split of ``data_dir`` (annotation list or class folders, as the trainer reads it)."""
    return find_split(data_dir, "val", "auto", "check --data: `kit align dump` reads the val split of {path}")


def fixed_batch(data_dir: str | Path, size: int, cfg: Mapping, split=None) -> Batch:
    """The first ``size`` images of the val split of ``data_dir``, preprocessed by ``cfg`` (see :func:`data_config`)."""
    root = Path(data_dir)
    split = split or val_split(root)
    if len(split.samples) < size:
        raise UserError(f"{split.source}: {len(split.samples)} images, fewer than --batch-size {size}")
    transform = build_transform(cfg, training=False)
    images, labels, files = [], [], []
    for path, label in split.samples[:size]:
        try:
            images.append(transform(pil_loader(path)))
        except OSError as e:
            raise UserError(f"{path}: cannot be read as an image ({e})") from None
        labels.append(label)
        files.append(Path(os.path.relpath(path, root)).as_posix())
    labels_t = torch.tensor(labels, dtype=torch.long)
    return Batch(torch.stack(images).float(), labels_t, files, split.classes, split.source)
