"""The embedded dataset: real digits, the ImageNet layout, a fixed stratified split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from data_prep.digits import WNIDS, stratified_split, write_digits


def test_layout_counts_and_lists(digits_dir: Path):
    train = sorted((digits_dir / "train").rglob("*.JPEG"))
    val = sorted((digits_dir / "val").rglob("*.JPEG"))
    assert len(train) + len(val) == 1797
    assert sorted(p.name for p in (digits_dir / "train").iterdir()) == list(WNIDS)
    for split, files in (("train", train), ("val", val)):
        lines = (digits_dir / "meta" / f"{split}.txt").read_text().split("\n")[:-1]
        assert len(lines) == len(files)
        rel, label = lines[0].split(" ")
        assert (digits_dir / split / rel).exists() and rel.split("/")[0] == WNIDS[int(label)]
    img = Image.open(val[0])
    assert img.mode == "RGB" and img.size == (32, 32)


def test_split_is_stratified_and_fixed():
    labels = np.repeat(np.arange(10), 50)
    train, val = stratified_split(labels, 0.2, seed=0)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 500
    assert Counter(labels[val]) == {c: 10 for c in range(10)}
    assert stratified_split(labels, 0.2, seed=0) == (train, val)


def test_rewrite_is_a_no_op_and_nothing_half_written(digits_dir: Path):
    before = (digits_dir / "meta" / "val.txt").stat().st_mtime_ns
    write_digits(digits_dir)
    assert (digits_dir / "meta" / "val.txt").stat().st_mtime_ns == before
    assert not [p for p in digits_dir.parent.iterdir() if ".tmp-" in p.name]
