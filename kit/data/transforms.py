"""The recipe's augmentation: timm's ``create_transform``, plus one guard that keeps it working on every Pillow.

Everything here is timm's: RandomResizedCrop, flip, RandAugment / AutoAugment, colour jitter,
RandomErasing and the evaluation resize-and-crop, driven by the recipe's ``data`` section. The kit
adds a single thing, :func:`keep_posterize_in_range`.

Why the posterize guard
-----------------------
timm's posterize ops turn a magnitude into the number of bits to keep. The "increasing" variant
that the ImageNet recipes use (``rand-m9-mstd0.5-inc1``) keeps ``4 - int(m / 10 * 4)`` bits, and with
magnitude noise (``mstd0.5``) the magnitude sometimes reaches its cap of 10: 0 bits. The plain
``Posterize`` op of AutoAugment and RandAugment asks for 0 bits at magnitudes below 2.5 the same
way. Pillow up to 12 accepted 0 bits and returned a black image; Pillow 13.0 raises
``ValueError: bits must be between or equal to 1 and 8``, which killed a seed recipe's run within its
first hundred steps (timm 1.0.31 passes the 0 through). The kit keeps at least 1 bit, on every Pillow:
where Pillow 12 and older drew a black image, the kit now draws a 1-bit one; every other image is
unchanged. The same key then gives the same image whatever Pillow a machine has, which is what a
reference run on one machine and a port on another need.

Why the loaders normalise whole batches
---------------------------------------
timm's transform ends every image with ``ToTensor`` (uint8 to float, / 255) and ``Normalize``. Done one
image at a time that was about 40 % of the input pipeline on the workshop's 32x32 digits, which runs
serially with the compute there (no worker processes on 2 cores). :func:`split_normalize` stops the
per-image transform at a uint8 tensor, and the loader's collate applies the same two steps, the same
float32 operations, to the stacked batch: the batch is bit for bit the one the per-image transform gives
(``tests/test_data.py`` checks it). On the workshop's 2-core CPU the input pipeline got 1.8x faster and a
training step 1.10x (HiViT) to 1.22x (CaiT) faster (``bench/bench_loader.py``). timm's own prefetcher
does the same on the device, but scales the mean and standard deviation by 255 first, which rounds
differently. A transform with anything after ``Normalize`` (RandomErasing) keeps the per-image path.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

import torch
from PIL import ImageOps
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform
from timm.data import auto_augment as timm_auto_augment
from torchvision import transforms as tv

__all__ = [
    "posterize_at_least_one_bit",
    "augment_ops",
    "keep_posterize_in_range",
    "build_transform",
    "split_normalize",
    "normalize_batch",
]

try:  # timm >= 0.9 ends its transforms with MaybeToTensor; older ones with torchvision's ToTensor
    from timm.data.transforms import MaybeToTensor as _TimmToTensor
except ImportError:  # pragma: no cover - old timm
    _TimmToTensor = tv.ToTensor


def posterize_at_least_one_bit(img, bits_to_keep: int, **_):
    """timm's posterize, with the bit count kept inside Pillow's range 1..8 (8 or more: unchanged image)."""
    if bits_to_keep >= 8:
        return img
    return ImageOps.posterize(img, max(1, int(bits_to_keep)))


def augment_ops(transform: Any) -> Iterator[Any]:
    """Every timm ``AugmentOp`` inside ``transform`` (a Compose of RandAugment, AutoAugment, AugMix ...)."""
    if isinstance(transform, timm_auto_augment.AugmentOp):
        yield transform
        return
    if isinstance(transform, (list, tuple)):
        for item in transform:
            yield from augment_ops(item)
        return
    for attr in ("transforms", "ops", "policy"):  # Compose, RandAugment / AugMix, AutoAugment
        children = getattr(transform, attr, None)
        if isinstance(children, (list, tuple)):
            yield from augment_ops(children)


def keep_posterize_in_range(transform: Any) -> Any:
    """Swap every posterize op in ``transform`` for :func:`posterize_at_least_one_bit` (in place; returned)."""
    for op in augment_ops(transform):
        if op.aug_fn is timm_auto_augment.posterize:
            op.aug_fn = posterize_at_least_one_bit
    return transform


def build_transform(data_cfg: Mapping, training: bool):
    """timm's ``create_transform`` with the recipe's settings (``data.train`` or ``data.eval``)."""
    common = dict(
        input_size=int(data_cfg["img_size"]),
        mean=tuple(data_cfg.get("mean", IMAGENET_DEFAULT_MEAN)),
        std=tuple(data_cfg.get("std", IMAGENET_DEFAULT_STD)),
    )
    if not training:
        ev = data_cfg.get("eval", {})
        return create_transform(
            is_training=False,
            crop_pct=ev.get("crop_pct", 0.875),
            interpolation=ev.get("interpolation", "bicubic"),
            **common,
        )
    tr = dict(data_cfg.get("train", {}))
    for key in ("scale", "ratio"):
        if tr.get(key) is not None:
            tr[key] = tuple(tr[key])
    return keep_posterize_in_range(create_transform(is_training=True, **tr, **common))


def split_normalize(transform: Any) -> tuple[Any, Optional[tv.Normalize]]:
    """``(per-image transform ending in a uint8 tensor, the Normalize to apply to the batch)`` (module docstring).

    Only a ``Compose`` whose last two steps are timm's ``ToTensor`` and ``Normalize`` is split; any other
    transform comes back unchanged, with ``None``.
    """
    steps = list(getattr(transform, "transforms", []))
    if len(steps) < 2 or not isinstance(steps[-2], (_TimmToTensor, tv.ToTensor)) or type(steps[-1]) is not tv.Normalize:
        return transform, None
    return tv.Compose([*steps[:-2], tv.PILToTensor()]), steps[-1]


def normalize_batch(images: torch.Tensor, normalize: tv.Normalize) -> torch.Tensor:
    """A stacked uint8 batch as ``ToTensor`` then ``normalize`` make each image: the same float operations."""
    return normalize(images.to(torch.get_default_dtype()).div(255))
