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
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from PIL import ImageOps
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform
from timm.data import auto_augment as timm_auto_augment


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
