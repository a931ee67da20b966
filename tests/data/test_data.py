"""kit.data.loaders: finding images (class folders, annotation lists), seeded augmentation, sharded sampling,
and the errors a user sees for missing data and unreadable images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from kit.core import annotations
from kit.core.errors import UserError
from kit.data import loaders as data
from kit.data.transforms import build_transform, split_normalize

DATA_CFG = {
    "img_size": 16,
    "format": "auto",
    "num_workers": 0,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.25, 0.25, 0.25),
    "prepare": "write it with `python -m data_prep digits --out {path}`",
    "train": {
        "scale": (0.5, 1.0),
        "hflip": 0.5,
        "auto_augment": "rand-m9-mstd0.5-inc1",
        "re_prob": 0.25,
        "re_mode": "pixel",
    },
    "eval": {"crop_pct": 1.0, "interpolation": "bicubic"},
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, make_images) -> Path:
    return make_images(tmp_path_factory.mktemp("imgs"))


# -- finding the images -------------------------------------------------------------------------


def test_imagefolder_and_annotation_lists_find_the_same_images(dataset):
    listed = data.find_split(dataset, "train", "annotations")
    folders = data.find_split(dataset, "train", "imagefolder")
    assert listed.source.startswith("annotations") and folders.source.startswith("imagefolder")
    assert len(listed.samples) == len(folders.samples) == 64
    assert sorted(listed.samples) == sorted(folders.samples)
    assert folders.classes == [f"n{c:08d}" for c in range(4)]
    assert listed.classes == folders.classes  # from meta/classes.txt
    assert data.find_split(dataset, "val").source.startswith("annotations")  # auto prefers the lists


def test_imagefolder_without_meta(tmp_path, make_images):
    root = make_images(tmp_path / "d", classes=3, train_per_class=2, val_per_class=1, lists=False)
    split = data.find_split(root, "val")
    assert split.source.startswith("imagefolder") and split.num_classes == 3 and len(split.samples) == 3
    assert {label for _, label in split.samples} == {0, 1, 2}


def test_bad_annotation_line_names_file_and_line(tmp_path, make_images):
    root = make_images(tmp_path / "d", classes=2, train_per_class=2, val_per_class=1)
    with open(root / "meta" / "train.txt", "a") as f:
        f.write("n00000000/missing-label.png\n")
    with pytest.raises(UserError, match=r"meta/train\.txt:5: expected"):
        data.find_split(root, "train")


def test_annotation_lists_and_classes_round_trip(tmp_path):
    entries = [("n00000001/b.png", 1), ("n00000000/a name with spaces.png", 0), ("flat.png", 12)]
    path = annotations.list_file(tmp_path, "train")
    assert annotations.write_list(path, entries) == 3
    assert path.read_text(encoding="utf-8") == "n00000001/b.png 1\nn00000000/a name with spaces.png 0\nflat.png 12\n"
    assert annotations.read_list(path) == entries
    annotations.write_classes(tmp_path, ["n00000001", "n00000000"], {"n00000000": "zero, nought"})
    assert annotations.classes_file(tmp_path).read_text(encoding="utf-8") == "n00000001\nn00000000 zero, nought\n"
    assert annotations.read_classes(tmp_path) == ["n00000001", "n00000000"]
    assert annotations.read_words(tmp_path) == {"n00000000": "zero, nought"}
    assert annotations.read_classes(tmp_path / "none") is None and annotations.read_words(tmp_path / "none") == {}
    assert sorted(p.name for p in (tmp_path / "meta").iterdir()) == ["classes.txt", "train.txt"]  # no temporaries


@pytest.mark.parametrize(
    "bad",
    [
        "n00000000/no-label.png",
        "n00000000/a.png -1",
        "n00000000/a.png one",
        "n00000000/a.png 1.5",
        "n00000000/a.png \u00b2",
        "3",
    ],
)
def test_malformed_list_line_names_file_line_and_what_was_expected(tmp_path, bad):
    path = tmp_path / "val.txt"
    path.write_text(f"n00000000/ok.png 0\n\n{bad}\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}:3: expected '<relative/path> <label>'.*>= 0, found"):
        annotations.read_list(path)


def test_list_by_class_needs_a_class_folder_and_the_writer_refuses_what_it_cannot_read_back(tmp_path):
    path = tmp_path / "val.txt"
    path.write_text("n00000000/a.png 0\nILSVRC2012_val_00000001.JPEG 0\n", encoding="utf-8")
    assert annotations.read_list(path)[1] == ("ILSVRC2012_val_00000001.JPEG", 0)  # mmpretrain's flat val list
    with pytest.raises(UserError, match=rf"{re.escape(str(path))}:2: expected '<wnid>/<file> <label>'"):
        annotations.read_list(path, by_class=True)
    for rel, label in (("n00000000/a.png", -1), ("n00000000/a.png ", 0), ("", 0), ("n00000000/a\n.png", 0)):
        with pytest.raises(UserError, match="cannot list"):
            annotations.write_list(tmp_path / "out.txt", [(rel, label)])
    assert not (tmp_path / "out.txt").exists()


def test_missing_data_says_what_to_run(tmp_path):
    with pytest.raises(UserError, match=r"does not exist.*python -m data_prep digits --out .*nowhere"):
        data.find_split(tmp_path / "nowhere", "train", prepare=DATA_CFG["prepare"])
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match=r"train split is empty.*python -m data_prep digits"):
        data.find_split(tmp_path / "empty", "train", prepare=DATA_CFG["prepare"])
    (tmp_path / "nolist" / "meta").mkdir(parents=True)
    (tmp_path / "nolist" / "meta" / "train.txt").write_text("\n")
    with pytest.raises(UserError, match="lists no images"):
        data.find_split(tmp_path / "nolist", "train")


# -- unreadable images --------------------------------------------------------------------------


@pytest.fixture()
def corrupt_dataset(tmp_path, make_images) -> tuple[Path, Path]:
    root = make_images(tmp_path / "d", classes=2, train_per_class=4, val_per_class=2)
    bad = root / "train" / "n00000001" / "n00000001_002.png"
    bad.write_bytes(b"this is not a PNG file")
    return root, bad


def test_unreadable_image_error_names_the_file(corrupt_dataset):
    root, bad = corrupt_dataset
    split = data.find_split(root, "train")
    ds = data.ImageSamples(split.samples, build_transform(DATA_CFG, True))
    index = [p for p, _ in split.samples].index(str(bad))
    with pytest.raises(data.UnreadableImage, match=f"cannot read image {bad}.*--skip-corrupt"):
        ds[(0, index)]
    # through worker processes, the message is still the one sentence naming the file
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=1, collate_fn=data.collate, sampler=data.ShardSampler(len(ds))
    )
    with pytest.raises(data.UnreadableImage) as info:
        list(data.clean_errors(loader))
    assert str(info.value).startswith(f"cannot read image {bad}") and "Traceback" not in str(info.value)


def test_skip_corrupt_substitutes_and_reports(corrupt_dataset):
    root, bad = corrupt_dataset
    loaders = data.build_loaders({**DATA_CFG, "path": str(root)}, batch_size=2, skip_corrupt=True)
    skipped = [s for _, _, skip in loaders.train for s in skip]
    assert len(skipped) == 1 and skipped[0].startswith(str(bad))
    assert sum(len(y) for _, y, _ in loaders.train) == 8  # the batch stays full: the next image stands in


# -- seeded augmentation and sampling -------------------------------------------------------------


def test_augmentation_is_a_function_of_seed_epoch_index(dataset):
    split = data.find_split(dataset, "train")
    ds = data.ImageSamples(split.samples, build_transform(DATA_CFG, True), seed=3)
    a, b = ds[(1, 5)][0], ds[(1, 5)][0]
    torch.rand(100)  # unrelated draws in between change nothing
    assert torch.equal(a, b) and torch.equal(a, ds[(1, 5)][0])
    assert not torch.equal(a, ds[(2, 5)][0])  # another epoch, another augmentation
    other_seed = data.ImageSamples(split.samples, build_transform(DATA_CFG, True), seed=4)
    assert not torch.equal(a, other_seed[(1, 5)][0])


def test_shards_of_each_global_batch_are_the_single_process_batch():
    n, global_batch, world = 50, 8, 2
    single = data.EpochSampler(n, seed=7)
    shards = [data.EpochSampler(n, seed=7, rank=r, world_size=world) for r in range(world)]
    for s in [single, *shards]:
        s.set_epoch(3)
    one = [key[1] for key in single]
    per_rank = [[key[1] for key in s] for s in shards]
    local = global_batch // world
    for k in range(len(per_rank[0]) // local):
        union = sorted(i for r in per_rank for i in r[k * local : (k + 1) * local])
        assert union == sorted(one[k * global_batch : (k + 1) * global_batch])
    single.set_epoch(4)
    assert [key[1] for key in single] != one  # a new order each epoch
    assert sorted(one) == list(range(n))


def test_sampler_skip_resumes_inside_the_epoch():
    s = data.EpochSampler(40, seed=1)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, skip=24)
    assert list(s) == full[24:] and len(s) == 16
    assert all(key[0] == 2 for key in full)


def test_repeated_augmentation_only_with_several_processes():
    assert data.EpochSampler(30, seed=0, repeats=3).repeats == 1
    ranks = [data.EpochSampler(30, seed=0, rank=r, world_size=3, repeats=3) for r in range(3)]
    keys = [list(s) for s in ranks]
    assert all(len(k) == 10 for k in keys)
    # DeiT's RASampler: the 3 copies of an image go to the 3 different ranks, each its own augmentation
    assert [k[1] for k in keys[0]] == [k[1] for k in keys[1]] == [k[1] for k in keys[2]]
    assert [k[2] for k in keys[0]][:3] == [0, 0, 0] and [k[2] for k in keys[1]][:3] == [1, 1, 1]


def test_eval_shards_cover_every_image_once():
    parts = [[i for _, i in data.ShardSampler(11, r, 3)] for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(11))


def test_loaders_from_recipe_settings(dataset):
    loaders = data.build_loaders({**DATA_CFG, "path": str(dataset)}, batch_size=8, eval_batch_size=16, seed=0)
    images, labels, skipped = next(iter(loaders.train))
    assert images.shape == (8, 3, 16, 16) and labels.dtype == torch.long and skipped == []
    assert loaders.steps_per_epoch == 8 and loaders.num_classes == 4
    val_images, _, _ = next(iter(loaders.val))
    assert val_images.shape == (16, 3, 16, 16)
    with pytest.raises(UserError, match="fewer than one batch"):
        data.build_loaders({**DATA_CFG, "path": str(dataset)}, batch_size=128)


def test_cached_images_give_the_same_batches_and_decode_each_file_once(dataset, monkeypatch):
    opened = []
    real = data.pil_loader
    monkeypatch.setattr(data, "pil_loader", lambda path: opened.append(path) or real(path))
    cache = data.DecodedCache(data.pil_loader)
    assert cache(str(next(dataset.rglob("*.png")))) is cache(str(next(dataset.rglob("*.png"))))
    assert len(opened) == 1

    def epochs(**extra):
        loaders = data.build_loaders({**DATA_CFG, "path": str(dataset), **extra}, batch_size=8, seed=0)
        out = []
        for epoch in (0, 1):
            loaders.train_sampler.set_epoch(epoch)
            out += [images for images, _, _ in loaders.train]
        return out

    opened.clear()
    plain = epochs()
    assert len(opened) == 2 * 64  # two epochs, every file opened each time
    opened.clear()
    cached = epochs(cache_images=True)
    assert len(opened) == 64  # each file once; the augmentations still differ per epoch
    assert all(torch.equal(a, b) for a, b in zip(plain, cached)) and len(plain) == len(cached)


def test_a_corrupt_file_is_not_cached_and_fails_again_by_name(corrupt_dataset):
    _, bad = corrupt_dataset
    cache = data.DecodedCache()
    for _ in range(2):
        with pytest.raises(Exception):
            cache(str(bad))
    assert str(bad) not in cache.images


def test_normalising_per_batch_gives_the_per_image_pipelines_batches_bit_for_bit(dataset, monkeypatch):
    # The workshop's settings (nothing after Normalize) with a strong augmentation; both splits, two epochs.
    cfg = {**DATA_CFG, "path": str(dataset), "train": {**DATA_CFG["train"], "re_prob": 0.0}}

    def batches():
        loaders = data.build_loaders(cfg, batch_size=8, eval_batch_size=16, seed=0)
        out = [images for images, _, _ in loaders.val]
        for epoch in (0, 1):
            loaders.train_sampler.set_epoch(epoch)
            out += [images for images, _, _ in loaders.train]
        return loaders, out

    loaders, batched = batches()
    assert isinstance(loaders.train.collate_fn, data.NormalizingCollate)  # (else this test compares a path to itself)
    assert isinstance(loaders.val.collate_fn, data.NormalizingCollate)
    assert loaders.train.dataset[(0, 0)][0].dtype == torch.uint8
    monkeypatch.setattr(data, "split_normalize", lambda transform: (transform, None))
    loaders, per_image = batches()
    assert loaders.train.collate_fn is data.collate and loaders.train.dataset[(0, 0)][0].dtype == torch.float32
    assert len(batched) == len(per_image) == 1 + 2 * 8  # 16 val images, 64 train images in batches of 8
    assert all(a.dtype == b.dtype == torch.float32 and torch.equal(a, b) for a, b in zip(batched, per_image))


def test_random_erasing_after_normalize_keeps_the_per_image_path(dataset):
    loaders = data.build_loaders({**DATA_CFG, "path": str(dataset)}, batch_size=8, seed=0)  # re_prob 0.25
    assert loaders.train.collate_fn is data.collate  # erasing works on normalised images: cannot move to the batch
    assert isinstance(loaders.val.collate_fn, data.NormalizingCollate)
    transform = build_transform({**DATA_CFG, "train": {**DATA_CFG["train"], "re_prob": 0.0}}, True)
    per_image, normalize = split_normalize(transform)
    assert normalize is transform.transforms[-1] and type(per_image.transforms[-1]).__name__ == "PILToTensor"
    assert split_normalize(per_image) == (per_image, None)  # nothing left to split
