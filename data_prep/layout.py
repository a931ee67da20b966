"""The on-disk layout every ``data_prep`` command reads or writes (ImageNet's, as mmpretrain reads it).

::

    ROOT/train/<wnid>/<file>.JPEG      one folder per class
    ROOT/val/<wnid>/<file>.JPEG
    ROOT/meta/train.txt                "<wnid>/<file>.JPEG <label>" per line, relative to train/
    ROOT/meta/val.txt                  the same, relative to val/
    ROOT/meta/classes.txt              "<wnid>[ <words>]" per line, in label order

Labels are the index of the wnid in sorted order (0..999 for ImageNet-1k): the order torchvision's
``ImageFolder`` uses too, so a loader that reads the folders and one that reads the lists agree.
Names starting with ``.`` are temporary (an unfinished build) and are never listed.
"""

from __future__ import annotations

import os
from pathlib import Path

from kit.atomic import atomic_write_text
from kit.errors import UserError

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


def read_classes(root: Path) -> list[str] | None:
    """The label order from ``meta/classes.txt`` (first word of each line), or None if there is none."""
    path = root / "meta" / "classes.txt"
    if not path.is_file():
        return None
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def read_words(root: Path) -> dict[str, str]:
    """``{wnid: words}`` from ``meta/classes.txt`` where a line has words after the wnid."""
    path = root / "meta" / "classes.txt"
    if not path.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def read_list(path: Path) -> list[tuple[str, str, int]]:
    """The lines of an annotation list as ``(wnid, file name, label)``; bad lines are a UserError."""
    entries = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        rel = parts[0].split("/")
        if len(parts) != 2 or len(rel) != 2 or not parts[1].isdigit():
            raise UserError(f"{path}:{lineno}: expected '<wnid>/<file> <label>', found {line!r}")
        entries.append((rel[0], rel[1], int(parts[1])))
    return entries


def write_meta(root: Path, classes: list[str], words: dict[str, str] | None = None) -> dict[str, int]:
    """Write ``meta/<split>.txt`` for each split folder under ``root`` and ``meta/classes.txt``.

    ``classes`` gives the label order (0, 1, ...). Returns the number of images listed per split.
    Every list is written under a temporary name and renamed, so a list that exists is complete.
    """
    label = {wnid: i for i, wnid in enumerate(classes)}
    words = words or {}
    counts = {}
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        lines = []
        for wnid, names in scan_split(split_dir).items():
            if wnid not in label:
                raise UserError(f"{split_dir / wnid}: class {wnid} is not one of the {len(classes)} classes")
            lines.extend(f"{wnid}/{name} {label[wnid]}\n" for name in names)
        atomic_write_text(root / "meta" / f"{split}.txt", "".join(lines))
        counts[split] = len(lines)
    text = "".join(f"{w} {words[w]}\n" if w in words else f"{w}\n" for w in classes)
    atomic_write_text(root / "meta" / "classes.txt", text)
    return counts
