"""CaiT: the workshop model, timm's CaiT through the kit, DeiT names and offline checkpoint loading."""

from __future__ import annotations

import argparse

import pytest
import timm
import torch

import kit.models  # noqa: F401  (registers the kit's models in timm)
from kit.core.errors import UserError
from kit.models import count_parameters, load_weights
from kit.models.cait import DEIT_NAMES, timm_name
from kit.models.weights import read_state_dict

# A cut-down timm CaiT (timm's own entry point, fewer blocks, 32x32 input) keeps checkpoint tests fast.
SMALL = dict(img_size=32, depth=2, num_classes=10)

pytestmark = pytest.mark.usefixtures("no_network")  # nothing here may download




def small(name: str = "cait_xxs24_224", **kwargs):
    torch.manual_seed(kwargs.pop("seed", 0))
    return timm.create_model(name, **{**SMALL, **kwargs}).eval()


def test_workshop_model_shapes():
    model = timm.create_model("cait_workshop_32").eval()
    assert model.num_classes == 10
    assert model.patch_embed.grid_size == (4, 4)
    assert model.pretrained_cfg["input_size"] == (3, 32, 32)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, 1 + 16, model.embed_dim)
    assert logits.shape == (2, 10)
    assert timm.create_model("cait_workshop_32", num_classes=3)(x).shape == (2, 3)


def test_workshop_model_trains_one_step():
    model = timm.create_model("cait_workshop_32")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = model(torch.randn(4, 3, 32, 32)).logsumexp(1).mean()
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "blocks.0.attn.proj_l.weight" in changed and "blocks_token_only.1.gamma_2" in changed


def test_timm_cait_models_build_through_kit():
    model = small("cait_xxs24_224")
    assert len(model.blocks) == 2 and len(model.blocks_token_only) == 2
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # full-size models on the meta device: the counts of the paper's table (num_classes=1000)
    assert count_parameters("cait_xxs24_224") == pytest.approx(11.96e6, rel=2e-3)
    assert count_parameters("cait_s24_224") == pytest.approx(46.92e6, rel=2e-3)
    assert count_parameters("cait_workshop_32") == sum(
        p.numel() for p in timm.create_model("cait_workshop_32").parameters()
    )


def test_deit_names_map_to_registered_timm_models():
    registered = set(timm.list_models("cait_*"))
    assert set(DEIT_NAMES.values()) <= registered
    assert timm_name("cait_S24_224") == "cait_s24_224"
    assert timm_name("cait_M48") == "cait_m48_448"
    assert timm_name("XXS36_384.pth") == "cait_xxs36_384"  # DeiT's release file name
    assert timm_name("cait_s24_224") == "cait_s24_224"
    with pytest.raises(UserError, match="unknown CaiT name"):
        timm_name("cait_Q99")


def test_deit_checkpoint_round_trip_through_timm(tmp_path):
    source = small("cait_xxs24_224", seed=1)
    path = tmp_path / "XXS24_224.pth"
    deit_layout = {"model": {"module." + k: v for k, v in source.state_dict().items()}, "epoch": 299}
    if hasattr(torch.serialization, "safe_globals"):  # torch >= 2.5 reads DeiT's pickled args safely
        deit_layout["args"] = argparse.Namespace(model="cait_XXS24_224")
    torch.save(deit_layout, path)
    loaded = timm.create_model(timm_name("cait_XXS24_224"), pretrained=True,
                               pretrained_cfg_overlay=dict(file=str(path)), **SMALL).eval()
    assert loaded.pretrained_cfg["file"] == str(path)
    for k, v in source.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))


def test_in_memory_state_dict_and_plain_layout(tmp_path):
    source = small(seed=2)
    via_overlay = timm.create_model("cait_xxs24_224", pretrained=True,
                                    pretrained_cfg_overlay=dict(state_dict=source.state_dict()), **SMALL)
    assert torch.equal(via_overlay.pos_embed, source.pos_embed)
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": {"_orig_mod.module." + k: v for k, v in source.state_dict().items()}}, path)
    target = small(seed=3)
    assert load_weights(target, path) == []
    assert torch.equal(target.blocks[1].attn.proj_w.weight, source.blocks[1].attn.proj_w.weight)


def test_new_head_size_keeps_the_fresh_head(tmp_path):
    source = small(seed=4)
    path = tmp_path / "ten.pth"
    torch.save(source.state_dict(), path)
    target = small(seed=5, num_classes=3)
    fresh_head = target.head.weight.clone()
    assert load_weights(target, path) == ["head.bias", "head.weight"]
    assert torch.equal(target.head.weight, fresh_head)
    assert torch.equal(target.blocks[0].gamma_1, source.blocks[0].gamma_1)


def test_pos_embed_resampled_from_another_image_size(tmp_path):
    path = tmp_path / "64px.pth"
    torch.save(small(img_size=64).state_dict(), path)  # 4x4 patches at patch 16 -> 2x2 at 32 px
    target = small()
    load_weights(target, path)
    assert target.pos_embed.shape == (1, 4, 192)


@pytest.mark.parametrize("num_classes", [10, 3])  # 3: timm itself would only log the mismatch
def test_checkpoint_of_another_model_is_a_user_error(tmp_path, num_classes):
    path = tmp_path / "workshop.pth"
    torch.save({"model": timm.create_model("cait_workshop_32").state_dict()}, path)
    with pytest.raises(UserError) as info:
        timm.create_model("cait_xxs24_224", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)),
                          **{**SMALL, "num_classes": num_classes})
    msg = str(info.value)
    assert str(path) in msg and "does not fit cait_xxs24_224" in msg
    assert "shapes differ" in msg and "patch_embed.proj.weight" in msg

    other = tmp_path / "other_family.pth"
    torch.save({"backbone.layers.0.weight": torch.zeros(2), "pos_embed": torch.zeros(1, 4, 192)}, other)
    with pytest.raises(UserError, match=r"missing keys \(.*unexpected keys \(backbone.layers.0.weight"):
        load_weights(small(num_classes=num_classes), other)


def test_pretrained_without_file_never_downloads():
    for name in ("cait_s24_224", "cait_workshop_32"):
        with pytest.raises(UserError, match="never downloads"):
            timm.create_model(name, pretrained=True)
    assert timm.list_models("cait_*", pretrained=True) == []  # no download source left in the registry


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "no such checkpoint file"),
        (b"not a checkpoint", "is not a PyTorch checkpoint"),
        ({"net": {"w": torch.zeros(1)}, "epoch": 3}, "found no state dict .*'net', 'epoch'"),
        ([torch.zeros(1)], "holds a list"),
    ],
)
def test_bad_checkpoint_files(tmp_path, content, match):
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(UserError, match=match):
        read_state_dict(path)


def test_load_weights_serves_hivit_too(tmp_path):
    """The loader is family-agnostic: it uses HiViT's own filter (mmpretrain names) and the same checks."""
    torch.manual_seed(0)
    source = timm.create_model("hivit_workshop_32")
    mmpretrain = {("head.fc." + k[5:] if k.startswith("head.") else "backbone." + k): v
                  for k, v in source.state_dict().items()}
    path = tmp_path / "hivit_mmpretrain.pth"
    torch.save({"state_dict": mmpretrain, "meta": {"epoch": 1}}, path)
    torch.manual_seed(1)
    target = timm.create_model("hivit_workshop_32")
    assert load_weights(target, path) == []
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in source.state_dict().items())

    cait_file = tmp_path / "cait.pth"
    torch.save(timm.create_model("cait_workshop_32").state_dict(), cait_file)
    with pytest.raises(UserError, match="does not fit hivit_workshop_32: .*missing keys"):
        load_weights(target, cait_file)
