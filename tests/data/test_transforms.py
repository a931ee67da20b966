"""kit.data.transforms: every recipe's augmentation survives many seeded draws, and posterize stays in Pillow's range.

Pillow 13 raises for posterize with 0 bits, which timm's RandAugment asks for about twice in a
thousand images with the seed recipes' ``rand-m9-mstd0.5-inc1``: the short runs elsewhere in the
suite never draw enough images to meet it, so these tests draw tens of thousands on tiny images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import Mixup
from timm.data import auto_augment as timm_aa

from kit.config import recipes
from kit.data import loaders as data
from kit.data.transforms import augment_ops, build_transform, keep_posterize_in_range, posterize_at_least_one_bit

SOAK_DRAWS = 20_000


def _distinct_data_sections() -> dict[str, dict]:
    """One recipe per distinct ``data`` section (the three HiViT sizes share theirs), at 32 px."""
    seen: dict[str, dict] = {}
    for name in recipes.list_recipes():
        cfg = dict(recipes.get_recipe(name)["data"], img_size=32)
        seen.setdefault(json.dumps(cfg, sort_keys=True, default=str), {"name": name, "data": cfg})
    return {v["name"]: v["data"] for v in seen.values()}


DATA_SECTIONS = _distinct_data_sections()


def _image(seed: int, size: int = 20) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATA_SECTIONS))
def test_every_recipes_train_transform_survives_many_seeded_draws(name):
    """20,000 samples drawn as the trainer draws them (keys (epoch, index) seed every random choice)."""
    images = [_image(k) for k in range(16)]
    samples = [(f"img{k}.png", 0) for k in range(len(images))]
    ds = data.ImageSamples(samples, build_transform(DATA_SECTIONS[name], True), seed=7,
                           loader=lambda path: images[int(path[3:-4])])
    for key in range(SOAK_DRAWS):
        img, _, _ = ds[(key // len(samples), key % len(samples))]
        assert img.shape == (3, 32, 32) and torch.isfinite(img).all()


def test_every_augment_op_survives_every_magnitude():
    """Each of timm's augmentation ops at magnitudes 0 to 10 (where RandAugment clips the noise), with the
    kit's guard: the edges the noisy magnitudes can reach, tried deterministically."""
    hparams = {"translate_const": 9, "translate_pct": 0.45, "img_mean": (124, 116, 104), "magnitude_std": 0}
    img = _image(0)
    for name in timm_aa.NAME_TO_OP:
        for magnitude in np.linspace(0, 10, 21):
            op = keep_posterize_in_range(timm_aa.AugmentOp(name, prob=1.0, magnitude=float(magnitude), hparams=hparams))
            out = op(img)
            assert out.size == img.size, (name, magnitude)


def test_posterize_keeps_at_least_one_bit_where_timm_asks_for_none():
    """The case Pillow 13 refuses: timm's increasing posterize at magnitude 10 keeps 4 - 4 = 0 bits."""
    (bits,) = timm_aa.LEVEL_TO_ARG["PosterizeIncreasing"](10.0, {})
    assert bits == 0
    img = _image(1)
    one_bit = posterize_at_least_one_bit(img, bits)
    assert set(np.unique(np.asarray(one_bit))) <= {0, 128}
    assert posterize_at_least_one_bit(img, 8) is img
    np.testing.assert_array_equal(np.asarray(posterize_at_least_one_bit(img, 3)), np.asarray(timm_aa.posterize(img, 3)))


def test_the_guard_reaches_every_posterize_op_of_randaugment_and_autoaugment():
    for policy in ("rand-m9-mstd0.5-inc1", "rand-m9-mstd0.5", "original", "v0"):
        transform = keep_posterize_in_range(timm_aa.auto_augment_transform(policy, {}) if not policy.startswith("rand")
                                            else timm_aa.rand_augment_transform(policy, {}))
        ops = list(augment_ops(transform))
        assert ops, policy
        assert all(op.aug_fn is not timm_aa.posterize for op in ops), policy
        assert any(op.aug_fn is posterize_at_least_one_bit for op in ops), policy


@pytest.mark.parametrize("name", sorted(n for n in recipes.list_recipes() if recipes.get_recipe(n).get("mixup")))
def test_mixup_and_cutmix_survive_many_seeded_batches(name):
    cfg = recipes.get_recipe(name)
    mixup = Mixup(**cfg["mixup"], label_smoothing=float(cfg.get("label_smoothing") or 0.0), num_classes=10)
    for step in range(2000):
        torch.manual_seed(step)
        images, labels = mixup(torch.rand(8, 3, 8, 8), torch.randint(0, 10, (8,)))
        assert torch.isfinite(images).all() and torch.allclose(labels.sum(1), torch.ones(8))


def test_a_failing_transform_names_the_image_the_key_and_the_op():
    def explode(img, *args, **kwargs):
        raise ValueError("bits must be between or equal to 1 and 8")

    transform = build_transform(DATA_SECTIONS["cait_s24_in1k"], True)
    for op in augment_ops(transform):
        op.prob, op.aug_fn = 1.0, explode
    ds = data.ImageSamples([("some/dir/img0.png", 0)], transform, loader=lambda path: _image(0))
    with pytest.raises(data.TransformFailed) as failed:
        ds[(3, 0)]
    message = str(failed.value)
    assert "some/dir/img0.png" in message and "epoch 3, index 0" in message
    assert "AugmentOp(name=" in message and "ValueError: bits must be between" in message
    assert "\n" not in message
