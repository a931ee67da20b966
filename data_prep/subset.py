"""N classes x M images per class of a prepared dataset, deterministic by seed (an ImageNet-100, say).

* Classes: the wnids of ``--class-list FILE`` (first word of each line, ``#`` comments; a
  ``meta/classes.txt`` works), or ``--classes N`` drawn with ``random.Random(seed)`` from the sorted
  class folders.
* Images: per class, ``--per-class M`` train images drawn with a generator seeded by
  ``(seed, split, wnid)``, so a class's images do not depend on which other classes were drawn;
  a class with fewer than M keeps all of them (the output says which). Validation: all of the
  class's images, or ``--val-per-class K``.
* Files are hard links (no extra space; do not edit them in place, the source would change too),
  or copies where a link is impossible (another file system, a protected file) or with ``--copy``.
* Output: the usual layout (:mod:`data_prep.layout`) with labels 0..N-1 in sorted wnid order and
  ``meta/subset.json`` recording the choice. It is built under a temporary name and renamed when
  complete. An ``--out`` already built with the same choice is left as it is; another needs ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from pathlib import Path

from tqdm.auto import tqdm

from data_prep.layout import list_classes, list_files, write_meta
from kit.core.annotations import read_words
from kit.core.atomic import atomic_dir
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder


def read_class_list(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"--class-list {path}: no such file")
    lines = (line.split("#", 1)[0].split() for line in path.read_text().splitlines())
    wnids = [words[0] for words in lines if words]
    if not wnids:
        raise UserError(f"{path}: no class names in it")
    return wnids


def choose_classes(available: list[str], n: int | None, seed: int, class_list: list[str] | None) -> list[str]:
    """The chosen wnids, sorted (their label order)."""
    if class_list is not None:
        unknown = [w for w in class_list if w not in set(available)]
        if unknown:
            raise UserError(f"classes not in the source's train/: {', '.join(unknown[:10])}")
        return sorted(set(class_list))
    if n is None or not 1 <= n <= len(available):
        raise UserError(f"--classes must be between 1 and {len(available)} (the classes in the source), not {n}")
    return sorted(random.Random(seed).sample(available, n))


def choose_files(names: list[str], m: int | None, seed: int, split: str, wnid: str) -> list[str]:
    """``m`` of ``names`` (all if ``m`` is None or there are fewer), the same for the same seed and class."""
    if m is None or m >= len(names):
        return list(names)
    return sorted(random.Random(f"{seed}:{split}:{wnid}").sample(names, m))


class _Placer:
    """Hard-link a file, or copy it once links have failed (they keep failing: same reason)."""

    def __init__(self, copy: bool):
        self.copy, self.linked, self.copied = copy, 0, 0

    def __call__(self, src: Path, dst: Path) -> None:
        if not self.copy:
            try:
                os.link(src, dst)
                self.linked += 1
                return
            except OSError:  # EXDEV (another file system), EPERM (protected_hardlinks), no link support
                self.copy = True
        shutil.copy2(src, dst)
        self.copied += 1


def make_subset(
    src: str | Path,
    out: str | Path,
    classes: int | None = None,
    per_class: int | None = None,
    val_per_class: int | None = None,
    seed: int = 0,
    class_list: str | Path | None = None,
    copy: bool = False,
    force: bool = False,
) -> dict:
    """Build the subset (see the module docstring); returns the choice as written to ``meta/subset.json``."""
    src, out = Path(src), Path(out)
    if not (src / "train").is_dir():
        raise UserError(f"{src / 'train'}: no such folder; --src must be a dataset with train/ (and val/)")
    if per_class is not None and per_class < 1:
        raise UserError(f"--per-class must be at least 1, not {per_class}")
    wnids = choose_classes(
        list_classes(src / "train"), classes, seed, read_class_list(Path(class_list)) if class_list else None
    )
    picked = {}
    for split, m in (("train", per_class), ("val", val_per_class)):
        if (src / split).is_dir():
            picked[split] = {
                w: choose_files(list_files(src / split / w) if (src / split / w).is_dir() else [], m, seed, split, w)
                for w in wnids
            }
    choice = {
        "source": str(src.resolve()),
        "seed": seed,
        "per_class": per_class,
        "val_per_class": val_per_class,
        "classes": wnids,
        "images": {split: sum(map(len, files.values())) for split, files in picked.items()},
    }
    with hold_run_folder(out, "python -m data_prep subset"):  # from the check of --out to its rename
        recorded = out / "meta" / "subset.json"
        if out.exists() and not force:
            if recorded.is_file() and json.loads(recorded.read_text()) == choice:
                print(f"subset: {out} already holds this subset; nothing to do")
                return choice
            raise UserError(f"{out} exists and is not this subset; choose another --out or pass --force to replace it")
        short = [w for w in wnids if per_class is not None and len(picked["train"][w]) < per_class]
        if short:
            listed = ", ".join(short[:10])
            print(f"subset: {len(short)} classes have fewer than {per_class} train images and keep all: {listed}")

        place = _Placer(copy)
        total = sum(len(names) for files in picked.values() for names in files.values())
        with atomic_dir(out) as tmp, tqdm(total=total, unit="img", desc="subset") as bar:
            for split, files in picked.items():
                for wnid, names in files.items():
                    (tmp / split / wnid).mkdir(parents=True)
                    for name in names:
                        place(src / split / wnid / name, tmp / split / wnid / name)
                        bar.update()
            write_meta(tmp, wnids, read_words(src))
            (tmp / "meta" / "subset.json").write_text(json.dumps(choice, indent=1) + "\n")
    choice["placed"] = {"hard links": place.linked, "copies": place.copied}
    return choice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, help="a prepared dataset (train/, val/, meta/)")
    parser.add_argument("--out", required=True, help="folder to create")
    parser.add_argument("--classes", type=int, metavar="N", help="number of classes to draw")
    parser.add_argument("--class-list", metavar="FILE", help="take these classes instead (one wnid per line)")
    parser.add_argument("--per-class", type=int, metavar="M", help="train images per class (default: all)")
    parser.add_argument("--val-per-class", type=int, metavar="K", help="val images per class (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="fixes which classes and images (default 0)")
    parser.add_argument("--copy", action="store_true", help="copy the files instead of hard-linking them")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")


def run(args: argparse.Namespace) -> int:
    if args.classes is None and args.class_list is None:
        raise UserError("give --classes N or --class-list FILE")
    choice = make_subset(
        args.src, args.out, args.classes, args.per_class, args.val_per_class, args.seed, args.class_list,
        args.copy, args.force,
    )
    images = " + ".join(f"{n:,} {split}" for split, n in choice["images"].items())
    placed = choice.get("placed")
    how = f" ({placed['hard links']:,} hard links, {placed['copies']:,} copies)" if placed else ""
    print(f"subset: {len(choice['classes'])} classes, {images} images{how} -> {args.out}")
    return 0
