"""The on-disk layout every ``data_prep`` command reads or writes (ImageNet's, as mmpretrain reads it).

::

    ROOT/train/<wnid>/<file>.JPEG      one folder per class
    ROOT/val/<wnid>/<file>.JPEG
    ROOT/meta/train.txt                "<wnid>/<file>.JPEG <label>" per line, relative to train/
    ROOT/meta/val.txt                  the same, relative to val/
    ROOT/meta/classes.txt              "<wnid>[ <words>]" per line, in label order

The format of the lists and of ``classes.txt`` (reading and writing) is :mod:`kit.core.annotations`'s.
Labels are the index of the wnid in sorted order (0..999 for ImageNet-1k): the order torchvision's
``ImageFolder`` uses too, so a loader that reads the folders and one that reads the lists agree.
Names starting with ``.`` are temporary (an unfinished build) and are never listed.
"""

from __future__ import annotations

import os
from pathlib import Path

from kit.core.annotations import list_file, write_classes, write_list
from kit.core.errors import UserError

SPLITS = ("train", "val")


def list_classes(split_dir: Path) -> list[str]:
    """Sorted class folder names under ``split_dir`` (temporary ``.names`` left out)."""
    with os.scandir(split_dir) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


def list_files(class_dir: Path) -> list[str]:
    """Sorted file names in one class folder (temporary ``.names`` left out)."""
    with os.scandir(class_dir) as it:
        return sorted(e.name for e in it if e.is_file() and not e.name.startswith("."))


def scan_split(split_dir: Path) -> dict[str, list[str]]:
    """``{wnid: [file names]}`` for every class folder of one split."""
    return {wnid: list_files(split_dir / wnid) for wnid in list_classes(split_dir)}


def write_meta(root: Path, classes: list[str], words: dict[str, str] | None = None) -> dict[str, int]:
    """Write ``meta/<split>.txt`` for each split folder under ``root`` and ``meta/classes.txt``.

    ``classes`` gives the label order (0, 1, ...). Returns the number of images listed per split.
    Every list is written under a temporary name and renamed, so a list that exists is complete.
    """
    label = {wnid: i for i, wnid in enumerate(classes)}
    counts = {}
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        entries = []
        for wnid, names in scan_split(split_dir).items():
            if wnid not in label:
                raise UserError(f"{split_dir / wnid}: class {wnid} is not one of the {len(classes)} classes")
            entries.extend((f"{wnid}/{name}", label[wnid]) for name in names)
        counts[split] = write_list(list_file(root, split), entries)
    write_classes(root, classes, words)
    return counts
