"""Build ImageNet-1k's class folders and annotation lists straight from the official archives.

Inputs (in ``--archives DIR`` under their official names, or given one by one)::

    ILSVRC2012_img_train.tar       1,000 per-class tars (n01440764.tar ...), 138 GB
    ILSVRC2012_img_val.tar         50,000 files in one folder (ILSVRC2012_val_00000001.JPEG ...), 6.3 GB
    validation labels, either      ILSVRC2012_devkit_t12.tar.gz (data/meta.mat + ground-truth list)
                                   or Kaggle's LOC_val_solution.csv

Output under ``--out`` (see :mod:`data_prep.layout`)::

    train/n01440764/n01440764_10026.JPEG ...      1,281,167 images
    val/n01440764/ILSVRC2012_val_00000293.JPEG ...   50,000 images
    meta/train.txt    "n01440764/n01440764_10026.JPEG 0"        (relative to train/, label)
    meta/val.txt      "n01440764/ILSVRC2012_val_00000293.JPEG 0" (relative to val/, label)
    meta/classes.txt  "n01440764 tench, Tinca tinca"            (words only with the devkit)

Labels are the wnid's index in sorted order (0..999), as torchvision's ImageFolder numbers the
folders. The devkit's own ``ILSVRC2012_ID`` is a different order (1 is n02119789, kit fox); it is
used only to look the wnid up. In an mmpretrain config (the HiViT port's) point the dataset at
``data_root=OUT, ann_file='meta/train.txt', data_prefix='train'`` (and ``meta/val.txt``, ``val``).

How it goes about it, and why:

* Streaming: each class tar is read in place inside the outer archive and its images are written
  straight to their folder; nothing is unpacked twice and no copy of the archives is made.
* Parallel where it pays: the train classes are extracted by ``--workers`` processes, each reading
  its own class tar at its offset in the outer archive (found from the outer tar's 1,000 headers).
  On a spinning disk use ``--workers 1``. The validation tar (5 % of the data) is one stream.
* Resumable: train classes are built in ``OUT/.train.partial/.<wnid>.tmp`` and renamed to
  ``<wnid>`` when complete; a re-run skips finished classes and redoes a half-done one. When all
  are there the folder is renamed to ``train/``. ``val/`` is built as a whole under a temporary
  name. So ``train/`` and ``val/`` exist only when complete, and the ``meta/`` lists (each written
  under a temporary name, last) only after them. (Interruptions - Ctrl-C, a kill, a crash - are
  covered; a power cut may lose data the OS had not yet written: ``verify`` finds that.)
* ``--check-md5`` compares the archives with the official checksums that torchvision records
  (``torchvision.datasets.imagenet.ARCHIVE_META``); it reads all 150 GB, so it is off by default.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import os
import re
import shutil
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from data_prep.layout import list_classes, write_meta
from data_prep.pool import cpu_count, imap_unordered
from kit.core import diskfull
from kit.core.annotations import read_words
from kit.core.atomic import atomic_dir
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
DEVKIT = "ILSVRC2012_devkit_t12.tar.gz"
LOC_CSV = "LOC_val_solution.csv"
#: Images in the full ImageNet-1k (ILSVRC2012) set; ``verify`` checks a 1,000-class set against them.
FULL_COUNTS = {"train": 1_281_167, "val": 50_000}

WNID = re.compile(r"n\d{8}")
CLASS_TAR = re.compile(r"(n\d{8})\.tar")
VAL_ID = re.compile(r"ILSVRC2012_val_\d{8}")
VAL_NAME = re.compile(r"(ILSVRC2012_val_\d{8})\.JPEG")
PARTIAL = ".train.partial"
BUFSIZE = 1 << 20


# ---------------------------------------------------------------------------------- val labels


@dataclass
class ValLabels:
    """Where each validation image belongs: ``wnid_of["ILSVRC2012_val_00000001"] == "n01751748"``."""

    wnid_of: dict[str, str]
    source: Path
    words: dict[str, str] = field(default_factory=dict)  # wnid -> "sea snake" (devkit only)


def read_val_labels(path: str | Path) -> ValLabels:
    """Validation labels from the devkit (``.tar.gz``) or from Kaggle's ``LOC_val_solution.csv``."""
    path = Path(path)
    if path.name.endswith((".tar.gz", ".tgz")):
        return read_devkit(path)
    if path.suffix == ".csv":
        return read_loc_csv(path)
    raise UserError(f"{path}: validation labels must be the devkit ({DEVKIT}) or Kaggle's {LOC_CSV}")


def read_devkit(path: Path) -> ValLabels:
    """Parse ``data/meta.mat`` (synsets: ILSVRC2012_ID -> WNID) and the ground-truth list of the devkit.

    The same files torchvision's ``parse_devkit_archive`` reads, read here straight from the tar.gz
    (torchvision's parser unpacks it and saves a ``meta.bin`` beside the archive).
    Line ``i`` of ``ILSVRC2012_validation_ground_truth.txt`` is the ILSVRC2012_ID of
    ``ILSVRC2012_val_<i>.JPEG``; only leaf synsets (``num_children == 0``) are classes.
    """
    import numpy as np
    from scipy.io import loadmat

    try:
        with tarfile.open(path, "r:gz") as tar:
            files = {m.name: m for m in tar.getmembers() if m.isfile()}
            meta_name = _member_ending(files, "data/meta.mat", path)
            truth_name = _member_ending(files, "data/ILSVRC2012_validation_ground_truth.txt", path)
            meta_bytes = tar.extractfile(files[meta_name]).read()
            truth = tar.extractfile(files[truth_name]).read().decode("ascii", "replace")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read it as the devkit archive {DEVKIT} ({e})") from None
    try:
        synsets = loadmat(io.BytesIO(meta_bytes), squeeze_me=True).get("synsets")
    except Exception as e:  # scipy raises ValueError, TypeError ... for a damaged .mat
        raise UserError(f"{path}: {meta_name} is not a readable MATLAB file ({e})") from None
    needed = {"ILSVRC2012_ID", "WNID", "words", "num_children"}
    if synsets is None or synsets.dtype.names is None or not needed <= set(synsets.dtype.names):
        raise UserError(f"{path}: {meta_name} has no 'synsets' table with the fields {sorted(needed)}")
    leaves = [s for s in np.atleast_1d(synsets) if int(s["num_children"]) == 0]
    wnid_of_id = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in leaves}
    wnid_of = {}
    for lineno, line in enumerate(truth.splitlines(), start=1):
        wnid = wnid_of_id.get(int(line)) if line.strip().isdigit() else None
        if wnid is None:
            raise UserError(f"{path}: {truth_name}:{lineno}: {line!r} is not the ILSVRC2012_ID of a class in meta.mat")
        wnid_of[f"ILSVRC2012_val_{lineno:08d}"] = wnid
    if not wnid_of:
        raise UserError(f"{path}: {truth_name} is empty")
    return ValLabels(wnid_of, path, {str(s["WNID"]): str(s["words"]) for s in leaves})


def _member_ending(files: dict, suffix: str, archive: Path) -> str:
    for name in files:
        if name == suffix or name.endswith("/" + suffix):
            return name
    raise UserError(f"{archive}: no {suffix} inside; is it {DEVKIT}?")


def read_loc_csv(path: Path) -> ValLabels:
    """Kaggle's ``LOC_val_solution.csv``: ``ImageId,PredictionString``, the wnid first in the string."""
    wnid_of = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header != ["ImageId", "PredictionString"]:
                found = ",".join(header or [])
                raise UserError(
                    f"{path}:1: expected the header 'ImageId,PredictionString' of {LOC_CSV}, found {found!r}"
                )
            for lineno, row in enumerate(rows, start=2):
                if not row:
                    continue
                tokens = row[1].split() if len(row) == 2 else []
                if not (tokens and VAL_ID.fullmatch(row[0]) and WNID.fullmatch(tokens[0])):
                    raise UserError(
                        f"{path}:{lineno}: expected 'ILSVRC2012_val_NNNNNNNN,<wnid> <box> ...', found {','.join(row)!r}"
                    )
                wnid_of[row[0]] = tokens[0]
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; expected Kaggle's {LOC_CSV}") from None
    if not wnid_of:
        raise UserError(f"{path}: no labels in it")
    return ValLabels(wnid_of, path)


# --------------------------------------------------------------------------------------- train


@dataclass(frozen=True)
class ClassTar:
    """One class's tar inside the train archive: where its bytes start and how many there are."""

    wnid: str
    offset: int
    size: int


def index_train_archive(path: Path) -> list[ClassTar]:
    """The per-class tars of the train archive, from its headers alone (1,000 seeks, no data read)."""
    try:
        with tarfile.open(path, "r:") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, EOFError) as e:
        hint = "it is truncated; download it again" if "unexpected end" in str(e) else f"is it {TRAIN_TAR}?"
        raise UserError(f"{path}: cannot read it as a tar archive ({e}): {hint}") from None
    file_size = path.stat().st_size
    entries = []
    for m in members:
        match = CLASS_TAR.fullmatch(os.path.basename(m.name))
        if not (m.isfile() and match):
            raise UserError(
                f"{path} does not look like {TRAIN_TAR}: it holds {m.name!r} where per-class tars "
                "such as n01440764.tar are expected"
            )
        if m.offset_data + m.size > file_size:
            raise UserError(f"{path} is truncated inside {m.name}; download it again")
        entries.append(ClassTar(match[1], m.offset_data, m.size))
    if not entries:
        raise UserError(f"{path} is an empty tar; expected {TRAIN_TAR}")
    return entries


class _Section:
    """``size`` bytes of an open file from ``offset`` on: one class tar, read in place (no copy)."""

    def __init__(self, f, offset: int, size: int):
        f.seek(offset)
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(self.left if n < 0 else min(n, self.left))
        self.left -= len(data)
        return data


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dst: Path) -> None:
    """Write the member the stream is at to ``dst`` (the one place an image file is written)."""
    with tar.extractfile(member) as src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out, BUFSIZE)


def extract_class(entry: ClassTar, archive: Path, work_dir: Path) -> int:
    """Extract one class into ``work_dir/.<wnid>.tmp``, then rename it ``work_dir/<wnid>``. Returns images.

    A full disk says so in one line (the classes already extracted stay; a rerun goes on from them)."""
    with diskfull.writing(f"the images of class {entry.wnid}", work_dir / entry.wnid, entry.size,
                          intact="the classes extracted before it are complete and kept; free space and rerun "
                                 "the same command to go on from them"):
        return _extract_class(entry, archive, work_dir)


def _extract_class(entry: ClassTar, archive: Path, work_dir: Path) -> int:
    tmp = work_dir / f".{entry.wnid}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    n = 0
    try:
        with open(archive, "rb") as f:
            with tarfile.open(fileobj=_Section(f, entry.offset, entry.size), mode="r|", bufsize=BUFSIZE) as inner:
                for member in inner:
                    if not member.isfile():
                        continue
                    name = os.path.basename(member.name)
                    if not name or name.startswith("."):
                        raise UserError(f"{archive}: {entry.wnid}.tar holds an unexpected member {member.name!r}")
                    _copy_member(inner, member, tmp / name)
                    n += 1
    except tarfile.TarError as e:
        raise UserError(f"{archive}: {entry.wnid}.tar inside it is damaged ({e}); download the archive again") from None
    os.rename(tmp, work_dir / entry.wnid)
    return n


def build_train(archive: Path, out: Path, workers: int) -> bool:
    """Build ``out/train`` (see the module docstring); False if it was already complete."""
    final = out / "train"
    if final.is_dir():
        print(f"train: {final} is complete; skipped (remove it to rebuild)")
        return False
    entries = index_train_archive(archive)
    work_dir = out / PARTIAL
    work_dir.mkdir(parents=True, exist_ok=True)
    for half_done in work_dir.glob(".*.tmp"):
        shutil.rmtree(half_done)
    done = set(list_classes(work_dir))
    todo = [e for e in entries if e.wnid not in done]
    n_done = len(entries) - len(todo)
    print(f"train: {len(entries)} classes in {archive}; {n_done} already extracted, {len(todo)} to go")
    job = functools.partial(extract_class, archive=archive, work_dir=work_dir)
    with tqdm(total=sum(e.size for e in todo), unit="B", unit_scale=True, desc="train") as bar:
        for entry, _ in imap_unordered(job, todo, workers):
            bar.update(entry.size)
    os.rename(work_dir, final)
    return True


# ----------------------------------------------------------------------------------------- val


def build_val(archive: Path, labels: ValLabels, out: Path) -> bool:
    """Build ``out/val`` from the flat validation tar, one stream, under a temporary name."""
    final = out / "val"
    if final.is_dir():
        print(f"val: {final} is complete; skipped (remove it to rebuild)")
        return False
    for leftover in out.glob(".val.tmp-*"):  # from a run that was killed
        shutil.rmtree(leftover)
    n = 0
    needed, total = archive.stat().st_size, len(labels.wnid_of)
    with atomic_dir(final, "the validation images", needed) as tmp, tqdm(total=total, unit="img", desc="val") as bar:
        made = set()
        try:
            with tarfile.open(archive, "r|", bufsize=BUFSIZE) as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    match = VAL_NAME.fullmatch(os.path.basename(member.name))
                    if not match:
                        raise UserError(
                            f"{archive} does not look like {VAL_TAR}: it holds {member.name!r} where files "
                            "such as ILSVRC2012_val_00000001.JPEG are expected"
                        )
                    wnid = labels.wnid_of.get(match[1])
                    if wnid is None:
                        raise UserError(f"{archive}: {match[0]} has no label in {labels.source}")
                    if wnid not in made:
                        (tmp / wnid).mkdir()
                        made.add(wnid)
                    _copy_member(tar, member, tmp / wnid / match[0])
                    n += 1
                    bar.update()
        except tarfile.TarError as e:
            raise UserError(
                f"{archive}: cannot read it as a tar archive after {n} images ({e}); is it a complete {VAL_TAR}?"
            ) from None
        if n != len(labels.wnid_of):
            raise UserError(
                f"{archive} holds {n} validation images but {labels.source} labels {len(labels.wnid_of)}: "
                "a truncated archive, or labels of another set"
            )
    return True


# ------------------------------------------------------------------------------------ checksums


def md5_of(path: Path, bar=None) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(8 * BUFSIZE):
            md5.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return md5.hexdigest()


def md5_mismatches(expected: dict[Path, str]) -> list[str]:
    """Hash the files (in parallel threads: hashlib releases the GIL) and describe each mismatch."""
    if not expected:
        return []
    total = sum(p.stat().st_size for p in expected)
    with tqdm(total=total, unit="B", unit_scale=True, desc="md5") as bar, ThreadPoolExecutor(len(expected)) as pool:
        got = dict(zip(expected, pool.map(lambda p: md5_of(p, bar), expected)))
    return [
        f"{path}: md5 {got[path]}, but the official archive's is {md5}: damaged, or not the official file"
        for path, md5 in expected.items()
        if got[path] != md5
    ]


def official_md5s(train_tar: Path | None, val_tar: Path | None, val_labels: Path | None) -> dict[Path, str]:
    """The official checksum for each archive given, by its role (Kaggle's csv has none)."""
    from torchvision.datasets.imagenet import ARCHIVE_META  # {"train": (file name, md5), "val": ..., "devkit": ...}

    roles = {"train": train_tar, "val": val_tar}
    if val_labels is not None and val_labels.suffix != ".csv":
        roles["devkit"] = val_labels
    return {path: ARCHIVE_META[role][1] for role, path in roles.items() if path is not None}


# ------------------------------------------------------------------------------------------ API


def images_bytes(out: Path, train_tar: Path | None, val_tar: Path | None) -> int:
    """About what the splits still to build will take: the size of their archives (JPEGs are stored, not
    compressed, in them), less the train classes a previous run already extracted."""
    needed = 0
    if train_tar is not None and not (out / "train").is_dir():
        done = set(list_classes(out / PARTIAL)) if (out / PARTIAL).is_dir() else set()
        needed += sum(e.size for e in index_train_archive(train_tar) if e.wnid not in done)
    if val_tar is not None and not (out / "val").is_dir():
        needed += val_tar.stat().st_size
    return max(needed, 0)


def prepare_imagenet(
    out: str | Path,
    train_tar: str | Path | None = None,
    val_tar: str | Path | None = None,
    val_labels: str | Path | None = None,
    workers: int = 1,
    check_md5: bool = False,
) -> dict[str, int]:
    """Build ``out/train``, ``out/val`` (those whose archive is given) and ``out/meta``; images per split.

    ``val_tar`` needs ``val_labels``. Re-running resumes an interrupted build.
    """
    out = Path(out)
    train_tar, val_tar, val_labels = (Path(p) if p is not None else None for p in (train_tar, val_tar, val_labels))
    if val_tar is not None and val_labels is None:
        raise UserError(f"the validation labels ({DEVKIT} or {LOC_CSV}) are needed to sort {val_tar} into classes")
    for path in (train_tar, val_tar, val_labels):
        if path is not None and not path.is_file():
            raise UserError(f"{path}: no such file")
    if check_md5:
        if problems := md5_mismatches(official_md5s(train_tar, val_tar, val_labels)):
            raise UserError("checksum mismatch:\n  " + "\n  ".join(problems))
        print("md5: the archives match the official checksums")
    labels = read_val_labels(val_labels) if val_tar is not None else None  # fail early, before hours of train
    with hold_run_folder(out, "python -m data_prep imagenet"):
        out.mkdir(parents=True, exist_ok=True)
        diskfull.warn_if_short(out, images_bytes(out, train_tar, val_tar), "the images still to extract")
        if train_tar is not None:
            build_train(train_tar, out, workers)
        if val_tar is not None:
            build_val(val_tar, labels, out)
        if (out / "train").is_dir():
            classes = list_classes(out / "train")
        elif labels is not None:
            classes = sorted(set(labels.wnid_of.values()))
        else:
            raise UserError(f"{out}: nothing to list: no train/ and no validation archive given")
        return write_meta(out, classes, labels.words if labels is not None and labels.words else read_words(out))


# ------------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder to build (train/, val/, meta/)")
    parser.add_argument(
        "--archives", default=".", help="folder with the archives under their official names (default: .)"
    )
    parser.add_argument("--train-tar", help=f"the train archive (default: ARCHIVES/{TRAIN_TAR})")
    parser.add_argument("--val-tar", help=f"the validation archive (default: ARCHIVES/{VAL_TAR})")
    parser.add_argument("--val-labels", help=f"{DEVKIT} or {LOC_CSV} (default: whichever of them is in ARCHIVES)")
    parser.add_argument("--splits", nargs="+", choices=("train", "val"), default=["train", "val"], help="default: both")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, cpu_count()),
        help="processes extracting train classes (default: min(8, CPUs); 1 for a spinning disk)",
    )
    parser.add_argument("--check-md5", action="store_true", help="first check the archives' md5 (reads them all)")


def _find(explicit: str | None, archives: Path, names: tuple[str, ...], what: str, flag: str) -> Path:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise UserError(f"{path}: no such file ({what}, given with {flag})")
        return path
    for name in names:
        if (archives / name).is_file():
            return archives / name
    wanted = " or ".join(str(archives / n) for n in names)
    raise UserError(f"{wanted} not found ({what}); put it there, or pass {flag} FILE")


def run(args: argparse.Namespace) -> int:
    archives = Path(args.archives)
    if not archives.is_dir():
        raise UserError(f"--archives {archives}: no such folder")
    train_tar = val_tar = val_labels = None
    if "train" in args.splits:
        train_tar = _find(args.train_tar, archives, (TRAIN_TAR,), "the train archive", "--train-tar")
    if "val" in args.splits:
        val_tar = _find(args.val_tar, archives, (VAL_TAR,), "the validation archive", "--val-tar")
        val_labels = _find(args.val_labels, archives, (DEVKIT, LOC_CSV), "the validation labels", "--val-labels")
    counts = prepare_imagenet(args.out, train_tar, val_tar, val_labels, args.workers, args.check_md5)
    listed = ", ".join(f"{n:,} {split}" for split, n in counts.items())
    print(f"imagenet: {listed} images -> {args.out} (lists in {Path(args.out) / 'meta'})")
    return 0
