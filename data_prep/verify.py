"""Check a prepared dataset: the images per class against what is expected, and every file decoded.

What counts as what (exit code 1 when there is any error, 0 otherwise):

* **error** - a file that cannot be decoded (empty, truncated, corrupt, not an image at all), and
  any count that differs from what is expected; each unreadable file is named by its path.
* **warning** - a file that decodes but is not an RGB JPEG: CMYK, grayscale (``L``), palette
  images, or PNG data under a ``.JPEG`` name. torchvision's and mmpretrain's loaders convert to RGB
  as they load, so training works; a pipeline that assumes RGB JPEGs (a GPU decoder, say) would
  not. The full ImageNet train set has a few such files (CMYK and grayscale JPEGs, one PNG).

What is expected:

* per class: exactly the files listed in ``meta/<split>.txt``, each with the label of its class in
  the label order (``meta/classes.txt``, else the sorted class folders); without a list (a bare
  ImageFolder tree) the per-class contents are not checked, and the output says so;
* in total: ``--expect-train N`` / ``--expect-val N``; without them, a subset is held to the
  counts its ``meta/subset.json`` records, a 1,000-class split to the full ImageNet-1k totals
  (1,281,167 train / 50,000 val), and any other set has no expected total (the output says so).

Decoding runs in ``--workers`` processes (PIL's ``Image.open(...).load()`` on every file).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, ImageFile
from tqdm.auto import tqdm

from data_prep.imagenet import FULL_COUNTS, PARTIAL
from data_prep.layout import SPLITS, scan_split
from data_prep.pool import chunks, cpu_count, imap_unordered
from kit.core.annotations import list_file, read_classes, read_list
from kit.core.atomic import atomic_write_text
from kit.core.errors import UserError

CHUNK = 64  # files per task sent to a worker process
SHOW = 20  # warnings (and examples per count problem) printed; --report has them all


@dataclass
class SplitSummary:
    split: str
    classes: int
    images: int
    expected: int | None  # expected total, if any
    expected_from: str  # where the expected total comes from, in words
    listed: bool  # per-class contents checked against meta/<split>.txt


@dataclass
class Report:
    root: str
    splits: list[SplitSummary] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, what is wrong): unreadable
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, what is unusual)
    count_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.count_problems


# ------------------------------------------------------------------------------------- decoding


def check_image(path: str) -> tuple[str, str] | None:
    """None for an RGB JPEG that decodes; else ``("error" | "warning", what is wrong)``."""
    try:
        if os.path.getsize(path) == 0:
            return "error", "empty file"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data" and the like: the pixels are fine
            with Image.open(path) as im:
                im.load()
                fmt, mode = im.format, im.mode
    except Exception as e:  # whatever stops PIL from decoding it makes the file unreadable
        return "error", f"cannot decode ({type(e).__name__}: {e})"
    problems = [f"{fmt} data, not JPEG"] if fmt != "JPEG" else []
    if mode != "RGB":
        problems.append(f"not RGB ({mode})")
    return ("warning", "; ".join(problems)) if problems else None


def check_files(paths: list[str]) -> list[tuple[str, str, str]]:
    """``(path, kind, problem)`` for each file of ``paths`` that is not a readable RGB JPEG."""
    saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False  # truncated must fail
    try:
        return [(p, *found) for p in paths if (found := check_image(p)) is not None]
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


# --------------------------------------------------------------------------------------- counts


def _examples(names, n: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (f" ... ({len(names)} in all)" if len(names) > n else "")


def check_list(root: Path, split: str, found: dict[str, list[str]], label_of: dict[str, int]) -> list[str]:
    """Compare one split's folders with ``meta/<split>.txt``: missing and unlisted files, wrong labels."""
    list_path = list_file(root, split)
    listed: dict[str, set[str]] = {}
    wrong_labels = []
    for rel, label in read_list(list_path, by_class=True):
        wnid, name = rel.split("/")
        listed.setdefault(wnid, set()).add(name)
        if label_of.get(wnid) != label:
            wrong_labels.append(f"{rel} {label}")
    problems = []
    if wrong_labels:
        problems.append(
            f"{list_path}: {len(wrong_labels)} lines whose label is not their class's place in the label order "
            f"(meta/classes.txt, else sorted wnids): {_examples(wrong_labels)}"
        )
    for wnid in sorted(set(found) | set(listed)):
        have, want = set(found.get(wnid, ())), listed.get(wnid, set())
        if have != want:
            what = [f"{len(have)} images, {len(want)} listed in meta/{split}.txt"]
            if want - have:
                what.append(f"missing: {_examples(want - have)}")
            if have - want:
                what.append(f"not listed: {_examples(have - want)}")
            problems.append(f"{root / split / wnid}: " + "; ".join(what))
    return problems


def expected_total(root: Path, split: str, n_classes: int, given: int | None) -> tuple[int | None, str]:
    """The images ``split`` should hold in all, and where that figure comes from (None: no figure)."""
    if given is not None:
        return given, f"--expect-{split}"
    subset = root / "meta" / "subset.json"
    if subset.is_file():
        recorded = json.loads(subset.read_text()).get("images", {}).get(split)
        return recorded, "meta/subset.json" if recorded is not None else ""
    if n_classes == 1000:
        return FULL_COUNTS[split], "the full ImageNet-1k"
    return None, ""


# ------------------------------------------------------------------------------------------ API


def verify_dataset(
    root: str | Path,
    splits: list[str] | None = None,
    expect: dict[str, int] | None = None,
    workers: int = 1,
) -> Report:
    """Check ``root``'s splits (default: those present); see the module docstring for what is checked."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    expect = expect or {}
    present = [s for s in SPLITS if (root / s).is_dir()]
    for split in splits or ():
        if split not in present:
            raise UserError(f"{root / split}: no such folder")
    splits = list(splits or present)
    report = Report(str(root))
    if (root / PARTIAL).exists() and "train" not in present:
        report.count_problems.append(f"{root / PARTIAL}: an interrupted 'imagenet' build; run it again to finish")
    if not splits:
        if report.count_problems:
            return report
        raise UserError(f"{root}: no train/ or val/ folder; is it a dataset built by 'python -m data_prep'?")

    found = {split: scan_split(root / split) for split in present}
    order = read_classes(root) or sorted({wnid for classes in found.values() for wnid in classes})
    label_of = {wnid: i for i, wnid in enumerate(order)}
    for split in splits:
        images = sum(len(names) for names in found[split].values())
        total, source = expected_total(root, split, len(found[split]), expect.get(split))
        listed = list_file(root, split).is_file()
        report.splits.append(SplitSummary(split, len(found[split]), images, total, source, listed))
        if total is not None and images != total:
            report.count_problems.append(f"{root / split}: {images:,} images, expected {total:,} ({source})")
        if listed:
            report.count_problems.extend(check_list(root, split, found[split], label_of))
        strays = [e.name for e in os.scandir(root / split) if e.is_file()]
        if strays:
            report.warnings.append((str(root / split), f"files outside any class folder: {_examples(strays)}"))

    paths = [str(root / s / wnid / name) for s in splits for wnid, names in found[s].items() for name in names]
    with tqdm(total=len(paths), unit="img", desc="decode") as bar:
        for chunk, problems in imap_unordered(check_files, chunks(paths, CHUNK), workers):
            for path, kind, problem in problems:
                (report.errors if kind == "error" else report.warnings).append((path, problem))
            bar.update(len(chunk))
    report.errors.sort()
    report.warnings.sort()
    return report


# ------------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset folder (with train/, val/, meta/)")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, help="default: the splits present")
    parser.add_argument("--expect-train", type=int, metavar="N", help="expected train images in total")
    parser.add_argument("--expect-val", type=int, metavar="N", help="expected val images in total")
    parser.add_argument("--workers", type=int, default=cpu_count(), help="decoding processes (default: all CPUs)")
    parser.add_argument("--report", metavar="FILE", help="also write the full report as JSON")


def print_report(report: Report) -> None:
    for s in report.splits:
        if s.expected is None:
            against = f"not checked (no expected figure; pass --expect-{s.split} N)"
        else:
            against = f"expected {s.expected:,} ({s.expected_from})"
        per_class = f"meta/{s.split}.txt" if s.listed else f"not checked (no meta/{s.split}.txt)"
        print(f"{s.split}: {s.classes:,} classes, {s.images:,} images; per class: {per_class}; total: {against}")
    for problem in report.count_problems:
        print(f"COUNT {problem}")
    for path, problem in report.errors:
        print(f"UNREADABLE {path}: {problem}")
    for path, problem in report.warnings[:SHOW]:
        print(f"warning {path}: {problem}")
    if len(report.warnings) > SHOW:
        print(f"... and {len(report.warnings) - SHOW} more warnings (all of them with --report FILE)")
    verdict = "ok" if report.ok else "FAILED"
    print(
        f"verify {report.root}: {verdict}: {len(report.errors)} unreadable files, "
        f"{len(report.count_problems)} count problems, {len(report.warnings)} warnings"
    )


def run(args: argparse.Namespace) -> int:
    expect = {s: n for s, n in (("train", args.expect_train), ("val", args.expect_val)) if n is not None}
    report = verify_dataset(args.root, args.splits, expect, args.workers)
    print_report(report)
    if args.report:
        atomic_write_text(args.report, json.dumps(asdict(report), indent=1) + "\n")
    return 0 if report.ok else 1
