"""Look at a prepared dataset: images per class, and a grid of samples per class.

Used by the dataset notebook; works on any folder in the ImageNet layout (``<split>/<wnid>/*``).
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp"}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def class_counts(root: str | Path, split: str) -> dict[str, int]:
    """``{wnid: number of images}`` for ``root/split``, in sorted class order (= label order)."""
    base = Path(root) / split
    return {d.name: len(_images(d)) for d in sorted(base.iterdir()) if d.is_dir()}


def class_names(root: str | Path) -> dict[str, str]:
    """``{wnid: readable name}`` from ``meta/classes.txt`` when there is one (else the wnid itself)."""
    from kit.core.annotations import read_classes, read_words

    words = read_words(root)
    return {wnid: words.get(wnid, wnid) for wnid in read_classes(root) or ()}


def plot_class_grid(root: str | Path, split: str = "train", per_class: int = 8, max_classes: int = 10):
    """A figure with one row per class and ``per_class`` sample images in it."""
    import matplotlib.pyplot as plt
    from PIL import Image

    base = Path(root) / split
    names = class_names(root)
    classes = sorted(d for d in base.iterdir() if d.is_dir())[:max_classes]
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.9, len(classes) * 0.95), squeeze=False)
    for row, folder in zip(axes, classes):
        files = _images(folder)[:per_class]
        for ax, path in zip(row, files):
            with Image.open(path) as img:
                ax.imshow(img.convert("RGB"))
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
        row[0].set_ylabel(names.get(folder.name, folder.name), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"{base}: {per_class} samples per class")
    fig.tight_layout()
    return fig


def plot_class_counts(root: str | Path, splits=("train", "val")):
    """Bar chart of images per class for each split."""
    import matplotlib.pyplot as plt
    import numpy as np

    counts = {s: class_counts(root, s) for s in splits if (Path(root) / s).is_dir()}
    names = class_names(root)
    wnids = sorted(set().union(*[c.keys() for c in counts.values()]))
    x = np.arange(len(wnids))
    width = 0.8 / max(1, len(counts))
    fig, ax = plt.subplots(figsize=(max(6, len(wnids) * 0.6), 3))
    for k, (split, c) in enumerate(counts.items()):
        ax.bar(x + k * width, [c.get(w, 0) for w in wnids], width, label=f"{split} ({sum(c.values())})")
    ax.set_xticks(x + width * (len(counts) - 1) / 2, [names.get(w, w) for w in wnids], rotation=45, ha="right")
    ax.set_ylabel("images")
    ax.legend()
    fig.tight_layout()
    return fig
