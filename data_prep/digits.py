"""The embedded default dataset: scikit-learn's handwritten digits in the ImageNet layout.

Why digits: they ship inside scikit-learn (1,797 real 8x8 scans, no download), they are hard
enough that an untrained model is at 10 % and easy enough that a small transformer reaches
> 95 % in about a minute on two CPU cores. Writing them exactly like ImageNet (class folders named
like WordNet ids, one image file each, ``meta/train.txt`` / ``meta/val.txt`` annotation lists) means
the workshop exercises the very code path a real ImageNet run takes.

Layout written under ``--out``::

    train/n00000000/n00000000_0001.JPEG ...   (class folder per digit 0-9)
    val/n00000000/ILSVRC2012_val_00000001.JPEG ...
    meta/train.txt  meta/val.txt               ("relative/path label" per line, as mmpretrain reads)
    meta/classes.txt                           ("wnid name" per line)

The lists and ``classes.txt`` are written by :mod:`kit.core.annotations`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from kit.core.annotations import list_file, write_classes, write_list
from kit.core.atomic import atomic_dir
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WNIDS = tuple(f"n{d:08d}" for d in range(10))
IMAGE_SIZE = 32
VAL_FRACTION = 0.2
SPLIT_SEED = 0
JPEG_QUALITY = 95


def stratified_split(labels: np.ndarray, val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED):
    """Indices (train, val) with the same share of every class in val; fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        val.extend(idx[:n_val].tolist())
        train.extend(idx[n_val:].tolist())
    return sorted(train), sorted(val)


def to_rgb_image(pixels_8x8: np.ndarray, size: int = IMAGE_SIZE) -> Image.Image:
    """An 8x8 scan (values 0..16, ink high) as a ``size``x``size`` RGB image, dark ink on white."""
    gray = (255 - pixels_8x8.astype(np.float32) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").resize((size, size), Image.BICUBIC).convert("RGB")


def write_digits(out: str | Path, size: int = IMAGE_SIZE, force: bool = False) -> Path:
    """Write the dataset under ``out`` (atomically: built beside it, then renamed). Returns ``out``.

    A complete ``out`` is returned as it is (unless ``force``) without taking its lock, so that
    notebooks that only need the data never collide; building it holds ``out`` (:mod:`kit.core.runlock`).
    """
    from sklearn.datasets import load_digits

    out = Path(out)
    if _complete(out) and not force:
        return out
    with hold_run_folder(out, "python -m data_prep digits"):
        if _complete(out) and not force:  # another process finished it since the check above
            return out
        if out.exists() and any(out.iterdir()) and not (out / "meta").exists():
            raise UserError(f"{out} exists and is not a digits dataset; choose another --out or remove it")
        _write(out, size, load_digits())
    return out


def _complete(out: Path) -> bool:
    return (out / "meta" / "val.txt").exists()


def _write(out: Path, size: int, digits) -> None:
    images, labels = digits.images, digits.target
    train_idx, val_idx = stratified_split(labels)
    with atomic_dir(out, "the digits dataset") as tmp:
        for split, indices in (("train", train_idx), ("val", val_idx)):
            entries = []
            for k, i in enumerate(indices, start=1):
                wnid = WNIDS[labels[i]]
                name = f"ILSVRC2012_val_{k:08d}.JPEG" if split == "val" else f"{wnid}_{i:04d}.JPEG"
                (tmp / split / wnid).mkdir(parents=True, exist_ok=True)
                to_rgb_image(images[i], size).save(tmp / split / wnid / name, format="JPEG", quality=JPEG_QUALITY)
                entries.append((f"{wnid}/{name}", int(labels[i])))
            write_list(list_file(tmp, split), entries)
        write_classes(tmp, WNIDS, dict(zip(WNIDS, NAMES)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to create (train/, val/, meta/)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="side of the square RGB images (default 32)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder is already complete")


def run(args: argparse.Namespace) -> int:
    out = write_digits(args.out, args.size, args.force)
    n_train = sum(1 for _ in (out / "train").rglob("*.JPEG"))
    n_val = sum(1 for _ in (out / "val").rglob("*.JPEG"))
    print(f"digits: {n_train} train + {n_val} val images, 10 classes, {args.size}x{args.size} RGB -> {out}")
    return 0
