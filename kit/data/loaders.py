"""Datasets and loaders for the trainer: ImageNet-style folders, seeded augmentation, sharded sampling.

Two layouts are read, both as ImageNet ships them (``data_prep`` writes both):

* class folders, read with torchvision's ``ImageFolder``: ``<root>/train/<wnid>/*.JPEG`` and
  ``<root>/val/<wnid>/*.JPEG`` (what DeiT reads);
* annotation lists, as mmpretrain reads them: ``<root>/meta/train.txt`` and ``meta/val.txt`` with
  lines ``<wnid>/<file> <label>``, relative to ``train/`` and ``val/`` (no directory walk over
  1.28 M files); ``meta/classes.txt`` (``wnid name`` per line) names the classes when present.

Augmentation is timm's ``create_transform``, driven by the recipe's ``data`` section (:mod:`kit.data.transforms`).

Why the sampler yields ``(epoch, index, copy)`` keys instead of plain indices: every random choice
made for a sample (crop, flip, RandAugment, erasing) is drawn from generators seeded by
``(seed, epoch, index, copy)`` and nothing else (``copy`` numbers the copies of an image under
repeated augmentation; it is 0 otherwise). The augmented image then does not depend on which
worker process loads it, on how many workers there are, or on whether the run was interrupted and
resumed half-way through the epoch -- which is what makes a resumed run repeat an uninterrupted
one exactly. The key travels with the index, so persistent workers need no epoch broadcast.

Sharding for DDP: the permutation depends only on ``(seed, epoch)``; rank ``r`` of ``W`` takes
every ``W``-th index starting at ``r``. Global batch ``k`` therefore holds the same images whatever
the number of processes (with the per-process batch = global batch / W), so a 2-process run
follows the loss curve of a 1-process run with the same global batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import pil_loader

from kit.core.annotations import classes_file, list_file, read_classes, read_list
from kit.core.errors import UserError
from kit.core.seeding import derive_seed, seed_cpu_generators
from kit.data.transforms import build_transform, normalize_batch, split_normalize

__all__ = [
    "SampleError",
    "UnreadableImage",
    "TransformFailed",
    "Split",
    "find_split",
    "DecodedCache",
    "ImageSamples",
    "failing_transform",
    "collate",
    "NormalizingCollate",
    "samples_and_collate",
    "EpochSampler",
    "ShardSampler",
    "Loaders",
    "build_loaders",
    "clean_errors",
]

Sample = tuple[str, int]


class SampleError(UserError):
    """A sample that cannot be made; the message names the file (and, for a transform, the key and the op)."""


class UnreadableImage(SampleError):
    """An image file that cannot be decoded, met while training without ``--skip-corrupt``."""


class TransformFailed(SampleError):
    """An augmentation raised on one sample: a bug of the transform or of its settings, not of the file.

    It is never skipped (``--skip-corrupt`` is for broken files): the message names the image, the
    sample key that reproduces the draw (``ImageSamples[(epoch, index, copy)]``) and the op that failed.
    """


# ---------------------------------------------------------------------------------------------
# Finding the images
# ---------------------------------------------------------------------------------------------


@dataclass
class Split:
    """The images of one split: ``(path, label)`` pairs, the class names, and where they came from."""

    samples: list[Sample]
    classes: list[str]
    source: str  # "imagefolder <dir>" or "annotations <file>"

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _missing(root: Path, what: str, prepare: str) -> UserError:
    hint = prepare.format(path=root) if prepare else "check --data"
    return UserError(f"{what}; {hint}")


def find_split(root: str | Path, split: str, fmt: str = "auto", prepare: str = "") -> Split:
    """The images of ``split`` ("train" or "val") under ``root``.

    ``fmt``: ``"annotations"`` (meta/<split>.txt), ``"imagefolder"`` (class folders) or ``"auto"``
    (annotation lists when ``meta/<split>.txt`` exists, else class folders). A missing folder or an
    empty split is a :class:`UserError` that says what to run (``prepare``, with ``{path}``).
    """
    root = Path(root)
    if not root.is_dir():
        raise _missing(root, f"data folder {root} does not exist", prepare)
    image_dir = root / split
    ann_file = list_file(root, split)
    if fmt not in ("auto", "annotations", "imagefolder"):
        raise UserError(f"data.format must be auto, annotations or imagefolder, not {fmt!r}")
    use_list = fmt == "annotations" or (fmt == "auto" and ann_file.is_file())
    if use_list:
        if not ann_file.is_file():
            raise _missing(root, f"annotation list {ann_file} does not exist", prepare)
        samples = [(str(image_dir / rel), label) for rel, label in read_list(ann_file)]
        if not samples:
            raise _missing(root, f"the {split} split is empty: {ann_file} lists no images", prepare)
        classes = read_classes(root)
        n_classes = max(label for _, label in samples) + 1
        if classes is None:
            classes = [str(i) for i in range(n_classes)]
        elif n_classes > len(classes):
            raise UserError(f"{ann_file}: label {n_classes - 1} but {classes_file(root)} names {len(classes)} classes")
        return Split(samples, classes, f"annotations {ann_file}")
    if not image_dir.is_dir():
        raise _missing(root, f"{image_dir} does not exist (no {split} split in {root})", prepare)
    try:
        folder = ImageFolder(str(image_dir))
    except FileNotFoundError as e:
        raise _missing(root, f"the {split} split is empty: {e}", prepare) from None
    return Split([(str(p), int(t)) for p, t in folder.samples], list(folder.classes), f"imagefolder {image_dir}")


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------


class DecodedCache:
    """A loader that decodes each file once and keeps the RGB image in memory (small data sets only).

    Recipe key ``data.cache_images``. For the workshop digits (1,797 images of 32x32, 5.5 MB decoded)
    opening and decoding the JPEGs again every epoch was about a third of the input pipeline's time.
    Transforms never modify the cached image (PIL operations return new images). Each DataLoader
    worker fills its own copy. A file that fails to decode is not cached, so it fails again, by name.
    """

    def __init__(self, load: Callable[[str], Any] = pil_loader):
        self.load = load
        self.images: dict[str, Any] = {}

    def __call__(self, path: str) -> Any:
        image = self.images.get(path)
        if image is None:
            image = self.images[path] = self.load(path)
        return image


class ImageSamples(Dataset):
    """``(path, label)`` samples, loaded as RGB and transformed with RNGs seeded per sample.

    ``dataset[(epoch, i)]`` or ``dataset[(epoch, i, copy)]`` (or ``dataset[i]``: epoch 0) returns
    ``(image, label, skipped)`` where
    ``skipped`` is a tuple of the unreadable files passed over to reach a readable one (always empty
    unless ``skip_corrupt``). Without ``skip_corrupt`` an unreadable file raises
    :class:`UnreadableImage` naming it.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Optional[Callable] = None,
        seed: int = 0,
        skip_corrupt: bool = False,
        loader: Callable[[str], Any] = pil_loader,
    ):
        self.samples = list(samples)
        self.transform = transform
        self.seed = int(seed)
        self.skip_corrupt = skip_corrupt
        self.loader = loader

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> tuple[str, Any, int, tuple[str, ...]]:
        skipped: list[str] = []
        for k in range(len(self.samples)):
            path, label = self.samples[(index + k) % len(self.samples)]
            try:
                return path, self.loader(path), label, tuple(skipped)
            except Exception as e:  # noqa: BLE001 - any decoder failure means "unreadable"
                reason = f"{type(e).__name__}: {e}"
                if not self.skip_corrupt:
                    raise UnreadableImage(
                        f"cannot read image {path} ({reason}). Fix or remove the file "
                        "(`python -m data_prep verify` decodes every image), or pass --skip-corrupt "
                        "to skip unreadable images"
                    ) from None
                skipped.append(f"{path} ({reason})")
        raise UserError(f"no readable image among the {len(self.samples)} files of this split")

    def __getitem__(self, key: int | tuple[int, ...]):
        epoch, index, copy = (tuple(key) + (0, 0))[:3] if isinstance(key, tuple) else (0, key, 0)
        path, img, label, skipped = self._load(index)
        if self.transform is not None:
            seed_cpu_generators(derive_seed(self.seed, epoch, index, copy))
            try:
                img = self.transform(img)
            except Exception as e:  # noqa: BLE001 - whatever an augmentation raises, name the sample
                raise TransformFailed(
                    f"augmentation failed on image {path} (sample epoch {epoch}, index {index}, copy {copy}) "
                    f"in {failing_transform(e, self.transform)}: {type(e).__name__}: {e}"
                ) from None
        return img, label, skipped


def failing_transform(error: BaseException, transform: Any) -> str:
    """The innermost timm/torchvision transform on ``error``'s traceback (e.g. timm's
    ``AugmentOp(name=PosterizeIncreasing, ...)`` inside RandAugment), else ``transform``'s class name."""
    found = type(transform).__name__
    tb = error.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        module = type(owner).__module__ or ""
        if owner is not None and module.startswith(("timm.", "torchvision.")) and type(owner).__name__ != "Compose":
            found = repr(owner)
        tb = tb.tb_next
    return found


def collate(batch: list) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Stack images and labels; gather the skipped-file notes of the batch into one list."""
    images = torch.stack([b[0] for b in batch])
    labels = torch.tensor([b[1] for b in batch], dtype=torch.long)
    skipped = [s for b in batch for s in b[2]]
    return images, labels, skipped


@dataclass
class NormalizingCollate:
    """:func:`collate`, then the transform's last two steps on the whole uint8 batch (:func:`split_normalize`)."""

    normalize: Any

    def __call__(self, batch: list) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        images, labels, skipped = collate(batch)
        return normalize_batch(images, self.normalize), labels, skipped


def samples_and_collate(
    samples: Sequence[Sample], transform: Any, seed: int, skip_corrupt: bool, load: Callable[[str], Any]
) -> tuple[ImageSamples, Callable[[list], Any]]:
    """The dataset of ``samples`` and the collate for its loader, normalising per batch where it can."""
    per_image, normalize = split_normalize(transform)
    dataset = ImageSamples(samples, per_image, seed, skip_corrupt, load)
    return dataset, (collate if normalize is None else NormalizingCollate(normalize))


# ---------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------


class EpochSampler(Sampler):
    """This rank's share of one epoch, as ``(epoch, index, copy)`` keys; a function of (seed, epoch) only.

    ``repeats > 1`` is DeiT's repeated augmentation (RASampler): each image appears ``repeats``
    times in the epoch's sequence, the copies landing on different ranks, and each rank keeps
    ``len // world_size`` keys (DeiT rounds that down to a multiple of 256 images; we do not). As
    in DeiT it only applies with more than one process. ``set_epoch(epoch, skip)`` starts the
    epoch ``skip`` keys in, which is how a resumed run jumps over the batches it already did
    without loading them.
    """

    def __init__(
        self, size: int, *, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1, repeats: int = 1
    ):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.repeats = max(1, int(repeats)) if world_size > 1 else 1
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def per_rank(self) -> int:
        return self.size // self.world_size

    def indices(self) -> list[int]:
        """This rank's whole epoch (before ``skip``)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(derive_seed(self.seed, self.epoch) % 2**63)
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.arange(self.size)
        return order.repeat_interleave(self.repeats)[self.rank :: self.world_size][: self.per_rank()].tolist()

    def keys(self) -> list[tuple[int, int, int]]:
        """``(epoch, index, copy)`` for this rank's whole epoch; ``copy`` tells repeated copies apart
        (so each copy of an image gets its own augmentation)."""
        copies = (torch.arange(self.size * self.repeats) % self.repeats)[self.rank :: self.world_size]
        return [(self.epoch, i, int(c)) for i, c in zip(self.indices(), copies)]

    def __len__(self) -> int:
        return max(0, self.per_rank() - self.skip)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return iter(self.keys()[self.skip :])


class ShardSampler(Sampler):
    """Evaluation: rank ``r`` takes indices ``r, r + W, ...`` in order; nothing padded or dropped,
    so summed counts over ranks are exact."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1):
        self.size, self.rank, self.world_size = size, rank, world_size

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world_size))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(0, i) for i in range(self.rank, self.size, self.world_size)])


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------


@dataclass
class Loaders:
    """What the trainer needs from the data: two loaders, the sampler to steer, and the class list."""

    train: DataLoader
    val: Optional[DataLoader]
    train_sampler: EpochSampler
    classes: list[str]
    train_source: str
    val_source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def steps_per_epoch(self) -> int:
        return self.train_sampler.per_rank() // self.train.batch_size


def build_loaders(
    data_cfg: Mapping,
    *,
    batch_size: int,
    eval_batch_size: Optional[int] = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    skip_corrupt: bool = False,
    with_val: bool = True,
    pin_memory: bool = False,
) -> Loaders:
    """Train (and val) loaders for one process of ``world_size``, from the recipe's ``data`` section."""
    root = Path(data_cfg["path"]).expanduser()
    fmt, prepare = data_cfg.get("format", "auto"), data_cfg.get("prepare", "")
    train_split = find_split(root, "train", fmt, prepare)
    val_split = find_split(root, "val", fmt, prepare) if with_val else None
    workers = int(data_cfg.get("num_workers", 0))
    loader_kw: dict[str, Any] = dict(num_workers=workers, pin_memory=pin_memory)
    if workers > 0:
        loader_kw["persistent_workers"] = True

    load = (
        DecodedCache(pil_loader) if data_cfg.get("cache_images", False) else pil_loader
    )  # one cache serves both splits
    train_set, train_collate = samples_and_collate(
        train_split.samples, build_transform(data_cfg, True), seed, skip_corrupt, load
    )
    sampler = EpochSampler(
        len(train_set), seed=seed, rank=rank, world_size=world_size, repeats=int(data_cfg.get("repeated_aug", 1) or 1),
        shuffle=bool(data_cfg.get("shuffle", True)),
    )
    if sampler.per_rank() < batch_size:
        raise UserError(
            f"{train_split.source}: {len(train_set)} training images give each of {world_size} process(es) "
            f"{sampler.per_rank()} images, fewer than one batch of {batch_size}; lower --batch-size"
        )
    train = DataLoader(
        train_set, batch_size=batch_size, sampler=sampler, drop_last=True, collate_fn=train_collate, **loader_kw
    )
    val = None
    if val_split is not None:
        val_set, val_collate = samples_and_collate(
            val_split.samples, build_transform(data_cfg, False), seed, skip_corrupt, load
        )
        val = DataLoader(
            val_set,
            batch_size=eval_batch_size or batch_size,
            sampler=ShardSampler(len(val_set), rank, world_size),
            collate_fn=val_collate,
            **loader_kw,
        )
    info = {
        "train": train_split.source,
        "train_images": len(train_set),
        "val": val_split.source if val_split else None,
        "val_images": len(val_split.samples) if val_split else 0,
        "classes": len(train_split.classes),
    }
    return Loaders(
        train, val, sampler, train_split.classes, train_split.source, val_split.source if val_split else "", info
    )


def clean_errors(batches: Iterable) -> Iterator:
    """Iterate a loader; a :class:`SampleError` raised in a worker comes out with its own message.

    (DataLoader re-raises worker errors with the worker's traceback pasted into the message; for a
    user error the one sentence that names the file is what should be printed.)
    """
    try:
        yield from batches
    except SampleError as e:
        text = str(e)
        if "Traceback" in text:
            last = [ln for ln in text.strip().splitlines() if ln.strip()][-1]
            for prefix in (f"{type(e).__module__}.{type(e).__name__}: ", f"{type(e).__name__}: "):
                if last.startswith(prefix):
                    last = last[len(prefix) :]
            text = last
        raise type(e)(text) from None
