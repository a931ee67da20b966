"""Shared fixtures. Everything a test needs is made here or shipped in the repository: no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """The embedded digits dataset, written once per test session (about 7 s)."""
    from data_prep.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("data") / "digits")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a Python-level connection fails the test: nothing may download."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    import socket

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def make_image_dataset(root: Path, classes: int = 4, train_per_class: int = 16, val_per_class: int = 4, size: int = 16,
                       lists: bool = True) -> Path:
    """A tiny learnable ImageNet-layout dataset: class c is a bright bar at row band c, plus noise.

    Writes train/<wnid>/*.png and val/<wnid>/*.png, and (``lists``) meta/{train,val,classes}.txt.
    """
    rng = np.random.default_rng(0)
    meta = {"train": [], "val": []}
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            wnid = f"n{c:08d}"
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                img = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
                band = size // classes
                img[c * band : (c + 1) * band, :, :] = 230
                name = f"{wnid}_{k:03d}.png"
                Image.fromarray(img).save(root / split / wnid / name)
                meta[split].append(f"{wnid}/{name} {c}")
    if lists:
        (root / "meta").mkdir(exist_ok=True)
        for split, lines in meta.items():
            (root / "meta" / f"{split}.txt").write_text("\n".join(lines) + "\n")
        (root / "meta" / "classes.txt").write_text("".join(f"n{c:08d} class{c}\n" for c in range(classes)))
    return root


@pytest.fixture(scope="session")
def make_images():
    """:func:`make_image_dataset`, for tests that write a dataset of their own shape."""
    return make_image_dataset
