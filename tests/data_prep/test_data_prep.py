"""data_prep's imagenet, verify and subset commands, end to end on miniature ImageNet archives.

The archives are built here from scikit-learn's digits, shaped like the official ones: a train tar
of per-class tars, a flat validation tar, the devkit (meta.mat + ground-truth list) and Kaggle's
LOC_val_solution.csv. The "bad" set adds a truncated JPEG, an empty file, a CMYK and a grayscale JPEG
and PNG data under a .JPEG name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep import imagenet
from data_prep.cli import main
from data_prep.digits import to_rgb_image

WNIDS = sorted(
    ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475",
     "n01496331", "n01498041", "n01514668", "n01514859", "n01518878"]
)  # fmt: skip
ILSVRC_IDS = [7, 3, 10, 1, 5, 9, 2, 8, 4, 6]  # the devkit's ids of WNIDS: deliberately not their sorted order
TRAIN_PER_CLASS, VAL_PER_CLASS = 4, 2
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Mini:
    dir: Path
    val_wnid: dict[str, str]  # "ILSVRC2012_val_00000001.JPEG" -> wnid
    train_names: dict[str, list[str]]
    bad: dict[str, str] = field(default_factory=dict)  # kind -> path relative to the dataset root


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _meta_mat() -> bytes:
    """A devkit meta.mat shaped like the real one: a synsets struct array, leaves first, then a parent."""
    from scipy.io import savemat

    fields = [
        "ILSVRC2012_ID",
        "WNID",
        "words",
        "gloss",
        "num_children",
        "children",
        "wordnet_height",
        "num_train_images",
    ]
    synsets = np.empty((len(WNIDS) + 1, 1), dtype=[(f, object) for f in fields])
    rows = [
        (i, w, f"fish {w}, Piscis", "a fish", 0, np.zeros(0), 0, TRAIN_PER_CLASS) for w, i in zip(WNIDS, ILSVRC_IDS)
    ]
    rows.append((len(WNIDS) + 1, "n00001740", "entity", "that which exists", len(WNIDS), np.arange(1, 11.0), 5, 0))
    for k, row in enumerate(rows):
        synsets[k, 0] = row
    buf = io.BytesIO()
    savemat(buf, {"synsets": synsets})
    return buf.getvalue()


def build_archives(folder: Path, bad: bool) -> Mini:
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True)
    image = {d: [to_rgb_image(digits.images[i]) for i in np.flatnonzero(digits.target == d)[:6]] for d in range(10)}
    train = {w: {f"{w}_{k + 1}.JPEG": _jpeg(image[c][k]) for k in range(TRAIN_PER_CLASS)} for c, w in enumerate(WNIDS)}
    mini = Mini(folder, {}, {})
    if bad:
        whole = _jpeg(image[0][5])
        extras = {
            "truncated": (WNIDS[0], f"{WNIDS[0]}_99.JPEG", whole[: len(whole) // 2]),
            "cmyk": (WNIDS[1], f"{WNIDS[1]}_99.JPEG", _jpeg(image[1][5].convert("CMYK"))),
            "gray": (WNIDS[2], f"{WNIDS[2]}_99.JPEG", _jpeg(image[2][5].convert("L"))),
            "png": (WNIDS[3], f"{WNIDS[3]}_99.JPEG", _png(image[3][5])),
        }
        for kind, (wnid, name, data) in extras.items():
            train[wnid][name] = data
            mini.bad[kind] = f"train/{wnid}/{name}"
    mini.train_names = {w: sorted(files) for w, files in train.items()}
    (folder / imagenet.TRAIN_TAR).write_bytes(_tar({f"{w}.tar": _tar(files) for w, files in train.items()}))

    order = np.random.default_rng(0).permutation([c for c in range(10) for _ in range(VAL_PER_CLASS)])
    seen = {c: 0 for c in range(10)}
    val, truth, loc = {}, [], ["ImageId,PredictionString"]
    for k, c in enumerate(order, start=1):
        name = f"ILSVRC2012_val_{k:08d}"
        val[f"{name}.JPEG"] = _jpeg(image[c][TRAIN_PER_CLASS + seen[c]])
        seen[c] += 1
        truth.append(ILSVRC_IDS[c])
        loc.append(f"{name},{WNIDS[c]} 1 2 30 31 {WNIDS[c]} 0 0 10 12")
        mini.val_wnid[f"{name}.JPEG"] = WNIDS[c]
    if bad:
        name = f"ILSVRC2012_val_{len(order) + 1:08d}"
        val[f"{name}.JPEG"] = b""
        truth.append(ILSVRC_IDS[3])
        loc.append(f"{name},{WNIDS[3]} 1 2 30 31")
        mini.val_wnid[f"{name}.JPEG"] = WNIDS[3]
        mini.bad["empty"] = f"val/{WNIDS[3]}/{name}.JPEG"
    (folder / imagenet.VAL_TAR).write_bytes(_tar(val))
    devkit = {
        "ILSVRC2012_devkit_t12/data/meta.mat": _meta_mat(),
        "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt": "".join(f"{i}\n" for i in truth).encode(),
        "ILSVRC2012_devkit_t12/COPYING": b"devkit\n",
    }
    (folder / imagenet.DEVKIT).write_bytes(_tar(devkit, "w:gz"))
    (folder / "labels").mkdir()
    (folder / "labels" / imagenet.LOC_CSV).write_text("\n".join(loc) + "\n")
    return mini


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Mini:
    return build_archives(tmp_path_factory.mktemp("archives") / "bad", bad=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Mini:
    return build_archives(tmp_path_factory.mktemp("archives") / "clean", bad=False)


@pytest.fixture(scope="module")
def built(mini, tmp_path_factory) -> Path:
    """The bad set, built once by the real command with two worker processes."""
    out = tmp_path_factory.mktemp("built") / "imagenet"
    assert main(["imagenet", "--archives", str(mini.dir), "--out", str(out), "--workers", "2"]) == 0
    return out


@pytest.fixture(scope="module")
def built_clean(clean, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "clean"
    assert main(["imagenet", "--archives", str(clean.dir), "--out", str(out), "--workers", "1"]) == 0
    return out


def _tree(root: Path) -> dict[str, str]:
    """Every file under root (relative path -> md5), temporary names included."""
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _lists(root: Path, split: str) -> list[tuple[str, int]]:
    return [
        (line.split()[0], int(line.split()[1])) for line in (root / "meta" / f"{split}.txt").read_text().splitlines()
    ]


# ------------------------------------------------------------------------------------ imagenet


def test_imagenet_builds_class_folders_and_lists(mini, built):
    assert sorted(os.listdir(built)) == ["meta", "train", "val"]  # no temporary names left
    assert sorted(os.listdir(built / "train")) == WNIDS
    for wnid, names in mini.train_names.items():
        assert sorted(os.listdir(built / "train" / wnid)) == names
    assert (built / mini.bad["truncated"]).read_bytes() == _inner_member(mini, mini.bad["truncated"])
    # labels are the sorted-wnid index (not the devkit's ILSVRC2012_ID), paths relative to train/ and val/
    train = _lists(built, "train")
    assert len(train) == sum(map(len, mini.train_names.values()))
    assert all(label == WNIDS.index(rel.split("/")[0]) for rel, label in train)
    val = dict(_lists(built, "val"))
    assert len(val) == len(mini.val_wnid)
    for name, wnid in mini.val_wnid.items():
        assert (built / "val" / wnid / name).is_file()
        assert val[f"{wnid}/{name}"] == WNIDS.index(wnid)
    classes = (built / "meta" / "classes.txt").read_text().splitlines()
    assert classes[0] == f"{WNIDS[0]} fish {WNIDS[0]}, Piscis" and len(classes) == 10  # the parent synset is no class


def _inner_member(mini: Mini, rel: str) -> bytes:
    _, wnid, name = rel.split("/")
    with tarfile.open(mini.dir / imagenet.TRAIN_TAR) as outer:
        with tarfile.open(fileobj=outer.extractfile(f"{wnid}.tar")) as inner:
            return inner.extractfile(name).read()


def test_loc_csv_labels_the_same_as_the_devkit(mini, built, tmp_path):
    out = tmp_path / "csv"
    args = ["imagenet", "--archives", str(mini.dir), "--val-labels", str(mini.dir / "labels" / imagenet.LOC_CSV)]
    assert main([*args, "--out", str(out), "--splits", "val"]) == 0
    assert (out / "meta" / "val.txt").read_text() == (built / "meta" / "val.txt").read_text()
    assert _tree(out / "val") == _tree(built / "val")
    assert not (out / "train").exists() and not (out / "meta" / "train.txt").exists()


def test_rerun_of_a_finished_build_skips_everything(mini, built, capsys):
    before = {p: p.stat().st_mtime_ns for p in (built / "train").rglob("*")}
    assert main(["imagenet", "--archives", str(mini.dir), "--out", str(built), "--workers", "1"]) == 0
    assert "train: " in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (built / "train").rglob("*")} == before


class Interrupt:
    """Stands in for imagenet._copy_member: copies ``after`` files, then acts as if Ctrl-C was pressed."""

    def __init__(self, after: int):
        self.after, self.calls, self.copy = after, 0, imagenet._copy_member

    def __call__(self, tar, member, dst):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        self.copy(tar, member, dst)


def test_interrupted_train_extraction_resumes(mini, built, tmp_path, monkeypatch, capsys):
    out = tmp_path / "imagenet"
    cmd = ["imagenet", "--archives", str(mini.dir), "--out", str(out), "--workers", "1"]
    # 2 classes of 5 files each (4 + a bad one), then 2 files into the third class
    monkeypatch.setattr(imagenet, "_copy_member", Interrupt(after=12))
    assert main(cmd) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == [imagenet.PARTIAL]  # nothing that looks finished
    partial = out / imagenet.PARTIAL
    assert sorted(os.listdir(partial)) == [f".{WNIDS[2]}.tmp", WNIDS[0], WNIDS[1]]
    assert len(os.listdir(partial / f".{WNIDS[2]}.tmp")) == 2

    monkeypatch.undo()
    extracted = []
    real = imagenet.extract_class
    monkeypatch.setattr(
        imagenet, "extract_class", lambda entry, **kw: extracted.append(entry.wnid) or real(entry, **kw)
    )
    assert main(cmd) == 0
    assert "2 already extracted, 8 to go" in capsys.readouterr().out
    assert extracted == WNIDS[2:]  # the half-done class is redone, the finished ones are not
    assert _tree(out) == _tree(built)


def test_interrupted_val_extraction_leaves_nothing(mini, built, tmp_path, monkeypatch):
    out = tmp_path / "imagenet"
    cmd = ["imagenet", "--archives", str(mini.dir), "--out", str(out), "--splits", "val"]
    monkeypatch.setattr(imagenet, "_copy_member", Interrupt(after=5))
    assert main(cmd) == 130
    assert os.listdir(out) == []
    monkeypatch.undo()
    assert main(cmd) == 0
    assert _tree(out / "val") == _tree(built / "val")


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    dst.write_bytes(src.read_bytes()[: int(src.stat().st_size * fraction)])
    return dst


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "ILSVRC2012_img_train.tar not found"),
        ("no labels", "ILSVRC2012_devkit_t12.tar.gz or"),
        ("swapped", "does not look like ILSVRC2012_img_train.tar"),
        ("val is train", "does not look like ILSVRC2012_img_val.tar"),
        ("not a tar", "cannot read it as a tar archive"),
        ("truncated train", "truncated"),
        ("truncated val", "validation images but"),
        ("bad csv", "LOC_val_solution.csv:1: expected the header"),
        ("csv short", "ILSVRC2012_val_00000021.JPEG has no label in"),
        ("devkit not gz", "cannot read it as the devkit archive"),
        ("md5", "md5"),
    ],
)
def test_missing_or_wrong_archives_exit_2(mini, tmp_path, capsys, case, message):
    a = mini.dir
    train, val = a / imagenet.TRAIN_TAR, a / imagenet.VAL_TAR
    csv = a / "labels" / imagenet.LOC_CSV
    empty, files = tmp_path / "empty", tmp_path / "files"
    empty.mkdir(), files.mkdir()
    val_only = ["--archives", str(a), "--splits", "val"]
    args = {
        "missing": ["--archives", str(empty)],
        "no labels": ["--archives", str(empty), "--train-tar", str(train), "--val-tar", str(val)],
        "swapped": ["--archives", str(a), "--train-tar", str(val)],
        "val is train": ["--archives", str(a), "--splits", "val", "--val-tar", str(train)],
        "not a tar": ["--archives", str(a), "--train-tar", str(csv)],
        "truncated train": ["--archives", str(a), "--train-tar", str(_truncate(train, files / "t.tar", 0.6))],
        "truncated val": [*val_only, "--val-tar", str(_truncate(val, files / "v.tar", 0.6))],
        "bad csv": [*val_only, "--val-labels", str(_write(files / imagenet.LOC_CSV, "id,wnid\n"))],
        "csv short": [*val_only, "--val-labels",
                      str(_write(files / "x.csv", "\n".join(csv.read_text().splitlines()[:-1]) + "\n"))],
        "devkit not gz": [*val_only, "--val-labels", str(_write(files / "d.tar.gz", "x"))],
        "md5": ["--archives", str(a), "--check-md5"],
    }[case]  # fmt: skip
    out = tmp_path / "out"
    assert main(["imagenet", "--out", str(out), "--workers", "1", *args]) == 2
    err = capsys.readouterr().err
    assert "python -m data_prep imagenet: error:" in err and message in err, err
    assert not (out / "train").exists() and not (out / "val").exists() and not (out / "meta").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_md5_check_passes_for_matching_checksums(mini):
    expected = {
        p: hashlib.md5(p.read_bytes()).hexdigest() for p in (mini.dir / imagenet.VAL_TAR, mini.dir / imagenet.DEVKIT)
    }
    assert imagenet.md5_mismatches(expected) == []
    expected[mini.dir / imagenet.VAL_TAR] = "0" * 32
    (problem,) = imagenet.md5_mismatches(expected)
    assert str(mini.dir / imagenet.VAL_TAR) in problem


def test_cli_error_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "data_prep", "imagenet", "--archives", str(tmp_path), "--out", str(tmp_path / "o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "not found" in proc.stderr


# -------------------------------------------------------------------------------------- verify


def test_verify_names_unreadable_files_and_warns_about_colour(mini, built, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert main(["verify", str(built), "--workers", "2", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    unreadable = sorted(line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("UNREADABLE"))
    assert unreadable == sorted(str(built / mini.bad[k]) for k in ("truncated", "empty"))
    assert f"{built / mini.bad['empty']}: empty file" in out
    assert f"warning {built / mini.bad['cmyk']}: not RGB (CMYK)" in out
    assert f"warning {built / mini.bad['gray']}: not RGB (L)" in out
    assert f"warning {built / mini.bad['png']}: PNG data, not JPEG" in out
    assert "total: not checked (no expected figure; pass --expect-train N)" in out and "COUNT" not in out
    data = json.loads(report.read_text())
    assert len(data["errors"]) == 2 and len(data["warnings"]) == 3


def test_verify_clean_set_and_expected_counts(clean, built_clean, capsys):
    n_train, n_val = 10 * TRAIN_PER_CLASS, 10 * VAL_PER_CLASS
    assert main(["verify", str(built_clean), "--workers", "1"]) == 0
    assert main(["verify", str(built_clean), "--expect-train", str(n_train), "--expect-val", str(n_val)]) == 0
    capsys.readouterr()
    assert main(["verify", str(built_clean), "--workers", "1", "--expect-train", str(n_train + 1)]) == 1
    assert f"COUNT {built_clean / 'train'}: {n_train} images, expected {n_train + 1}" in capsys.readouterr().out


def test_verify_finds_missing_unlisted_and_mislabelled_files(built_clean, tmp_path, capsys):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(built_clean, root)
    gone = root / "train" / WNIDS[4] / f"{WNIDS[4]}_2.JPEG"
    gone.unlink()
    shutil.copy(
        root / "val" / WNIDS[5] / os.listdir(root / "val" / WNIDS[5])[0], root / "val" / WNIDS[5] / "extra.JPEG"
    )
    lines = (root / "meta" / "val.txt").read_text().splitlines()
    lines[0] = lines[0].rsplit(" ", 1)[0] + " 7"  # wrong label
    (root / "meta" / "val.txt").write_text("\n".join(lines) + "\n")
    assert main(["verify", str(root), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert f"COUNT {root / 'train' / WNIDS[4]}: 3 images, 4 listed in meta/train.txt; missing: {gone.name}" in out
    assert f"COUNT {root / 'val' / WNIDS[5]}: 3 images, 2 listed in meta/val.txt; not listed: extra.JPEG" in out
    assert "1 lines whose label is not their class's place" in out


def test_verify_names_a_malformed_list_line(built_clean, tmp_path, capsys):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(built_clean, root)
    val = root / "meta" / "val.txt"
    n = len(val.read_text().splitlines())
    with open(val, "a") as f:
        f.write("ILSVRC2012_val_00000001.JPEG 0\n")  # no class folder: verify cannot place it
    assert main(["verify", str(root), "--workers", "1"]) == 2
    assert f"{val}:{n + 1}: expected '<wnid>/<file> <label>'" in capsys.readouterr().err


def test_write_meta_lists_read_back_as_the_folders(built_clean):
    from data_prep.layout import scan_split
    from kit.core.annotations import list_file, read_classes, read_list

    order = read_classes(built_clean)
    assert order == WNIDS
    for split in ("train", "val"):
        listed = read_list(list_file(built_clean, split), by_class=True)
        found = scan_split(built_clean / split)
        assert listed == [(f"{w}/{name}", order.index(w)) for w, names in found.items() for name in names]


def test_verify_reports_an_interrupted_build_and_bad_root(tmp_path, capsys):
    (tmp_path / "ds" / imagenet.PARTIAL / WNIDS[0]).mkdir(parents=True)
    assert main(["verify", str(tmp_path / "ds")]) == 1
    assert "interrupted 'imagenet' build" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


# -------------------------------------------------------------------------------------- subset


def _subset(src: Path, out: Path, *extra: str) -> int:
    return main(["subset", "--src", str(src), "--out", str(out), "--classes", "3", "--per-class", "2", *extra])


def test_subset_is_deterministic_hard_linked_and_verifies(built_clean, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _subset(built_clean, a, "--seed", "1") == 0 and _subset(built_clean, b, "--seed", "1") == 0
    assert _tree(a) == _tree(b)
    classes = sorted(os.listdir(a / "train"))
    assert len(classes) == 3 and set(classes) <= set(WNIDS)
    train = _lists(a, "train")
    assert len(train) == 6 and [label for _, label in train] == [0, 0, 1, 1, 2, 2]
    assert len(_lists(a, "val")) == 3 * VAL_PER_CLASS  # all val images of the chosen classes
    some = a / "train" / train[0][0]
    assert some.stat().st_ino == (built_clean / "train" / train[0][0]).stat().st_ino  # a hard link
    assert "12 hard links, 0 copies" in capsys.readouterr().out
    assert main(["verify", str(a), "--workers", "1"]) == 0
    assert "total: expected 6 (meta/subset.json)" in capsys.readouterr().out
    # other seeds draw other subsets
    choices = set()
    for seed in range(4):
        assert _subset(built_clean, tmp_path / f"s{seed}", "--seed", str(seed)) == 0
        choices.add(tuple(sorted(_tree(tmp_path / f"s{seed}" / "train"))))
    assert len(choices) > 1


def test_subset_copies_when_links_fail_and_guards_out(built_clean, tmp_path, monkeypatch, capsys):
    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    out = tmp_path / "copied"
    assert _subset(built_clean, out) == 0
    assert "0 hard links, 12 copies" in capsys.readouterr().out
    assert all(p.stat().st_nlink == 1 for p in out.rglob("*.JPEG"))
    assert _subset(built_clean, out) == 0  # the same subset again: nothing to do
    assert "nothing to do" in capsys.readouterr().out
    assert _subset(built_clean, out, "--seed", "5") == 2  # another one over it needs --force
    assert "--force" in capsys.readouterr().err
    assert _subset(built_clean, out, "--seed", "5", "--force") == 0
    assert main(["subset", "--src", str(built_clean), "--out", str(tmp_path / "x"), "--classes", "11"]) == 2
    assert "between 1 and 10" in capsys.readouterr().err


def test_subset_from_a_class_list(built_clean, tmp_path):
    listing = _write(tmp_path / "classes.txt", f"# ImageNet-2\n{WNIDS[7]} fish\n{WNIDS[3]}\n")
    out = tmp_path / "listed"
    assert main(["subset", "--src", str(built_clean), "--out", str(out), "--class-list", str(listing)]) == 0
    assert sorted(os.listdir(out / "train")) == [WNIDS[3], WNIDS[7]]
    assert len(_lists(out, "train")) == 2 * TRAIN_PER_CLASS
    assert (out / "meta" / "classes.txt").read_text().splitlines()[0].startswith(f"{WNIDS[3]} fish")


def test_expected_totals_come_from_the_flag_the_subset_record_or_the_full_set(tmp_path):
    from data_prep.verify import expected_total

    assert expected_total(tmp_path, "train", 1000, None) == (1_281_167, "the full ImageNet-1k")
    assert expected_total(tmp_path, "val", 1000, None) == (50_000, "the full ImageNet-1k")
    assert expected_total(tmp_path, "val", 100, None) == (None, "")
    assert expected_total(tmp_path, "val", 1000, 7) == (7, "--expect-val")
    (tmp_path / "meta").mkdir()
    _write(tmp_path / "meta" / "subset.json", '{"images": {"train": 5}}')
    assert expected_total(tmp_path, "train", 1000, None) == (5, "meta/subset.json")
