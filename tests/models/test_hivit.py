"""HiViT (kit/models/hivit.py): shapes, sizes, names, checkpoints, the masked path, gradients, drop-path.

Big models are built on the meta device (no memory, no compute); real forwards use small models.
The mmpretrain comparison uses a committed fixture made by bench/make_mmpretrain_fixture.py
(mmpretrain itself is not needed here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import timm.optim
import torch
import torch.nn as nn

import kit.models  # noqa: F401  (registers the kit's models in timm)
from kit.core.errors import UserError
from kit.models.hivit import Attention, HiViT, PatchMerge, random_masking_ids

DATA = Path(__file__).resolve().parents[1] / "fixtures"
BIG = {  # name -> (reference parameter count with a 1000-class head, key list, default drop-path rate)
    "hivit_tiny_patch16_224": (19_180_900, "tiny", 0.05),
    "hivit_small_patch16_224": (37_525_696, "small", 0.3),
    "hivit_base_patch16_224": (79_050_792, "base", 0.5),
}
SMALL = dict(img_size=32, patch_size=8, embed_dim=32, depths=(1, 1, 2), num_heads=2, num_classes=3)

pytestmark = pytest.mark.usefixtures("no_network")  # nothing here may download


def small_model(**kw) -> HiViT:
    torch.manual_seed(0)
    return timm.create_model("hivit_workshop_32", **{**SMALL, **kw})


@pytest.fixture(autouse=True)
def sdpa_everywhere(monkeypatch):
    """Let fused_attn=True really run SDPA on the CPU (by default the kit keeps the explicit path
    there when a bias is present, as it is faster), so both paths are checked."""
    monkeypatch.setattr(Attention, "sdpa_on_cpu_with_bias", True)


def set_fused(model: nn.Module, fused: bool) -> None:
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = fused


def perturb(model: nn.Module, scale: float = 0.05) -> None:
    """Move every parameter off its init so that unit norms / zero biases cannot hide mistakes."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


# ----------------------------------------------------------------------------------- registry
def test_every_hivit_model_is_registered_without_download_urls():
    names = timm.list_models("hivit_*")
    assert set(names) == set(BIG) | {"hivit_workshop_32"}
    for name in names:
        cfg = timm.get_pretrained_cfg(name)
        assert not cfg.url and not cfg.hf_hub_id


@pytest.mark.parametrize("name", sorted(BIG))
def test_big_models_meta_shapes_counts_and_names(name):
    count, arch, _ = BIG[name]
    with torch.device("meta"):
        model = timm.create_model(name)
        out = model(torch.empty(2, 3, 224, 224))
        feats = model.forward_features(torch.empty(2, 3, 224, 224))
    assert out.shape == (2, 1000)
    assert feats.shape == (2, 196, model.num_features)
    assert sum(p.numel() for p in model.parameters()) == count
    assert kit.models.count_parameters(name) == count
    ref = [tuple(line.split()) for line in (DATA / f"hivit_mmpretrain_keys_{arch}.txt").read_text().splitlines()]
    ours = [(k, "x".join(map(str, v.shape))) for k, v in model.state_dict().items() if not k.startswith("head.")]
    assert ours == ref  # same names, shapes and order as mmpretrain's backbone
    assert [k for k in model.state_dict() if k.startswith("head.")] == ["head.weight", "head.bias"]


def test_tiny_real_forward_at_small_image_size():
    torch.manual_seed(0)
    model = timm.create_model("hivit_tiny_patch16_224", img_size=64, num_classes=7).eval()
    assert model.grid_size == (4, 4) and model.pos_embed.shape == (1, 16, 384)
    assert model.blocks[6].attn.relative_position_bias_table.shape == (49, 6)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_workshop_model_defaults_and_shapes():
    model = timm.create_model("hivit_workshop_32")
    assert model.num_classes == 10 and model.grid_size == (4, 4)
    assert model.pretrained_cfg["input_size"] == (3, 32, 32)
    assert model.patch_embed.proj.kernel_size == (2, 2)  # patch 8 = 4x4 inner patches of 2x2 pixels
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 16, model.num_features)
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    assert model(x).shape == (2, 10)
    with pytest.raises(AssertionError):  # built for 32x32: another size is an error, not a silent resize
        model(torch.randn(1, 3, 64, 64))


def test_timm_interface_classifier_and_weight_decay():
    model = small_model()
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5 and model(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 32)
    nwd = model.no_weight_decay()
    names = dict(model.named_parameters())
    tables = {n for n in names if n.endswith("relative_position_bias_table")}
    assert len(tables) == 2 and nwd == tables | {"pos_embed"} and nwd <= set(names)
    opt = timm.optim.create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05)
    no_decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert all(id(names[n]) in no_decay for n in nwd)


# ------------------------------------------------------------------------ init and drop-path
@pytest.mark.parametrize("name", sorted(BIG))
def test_drop_path_schedule_is_linear_over_residual_blocks(name):
    _, _, rate = BIG[name]
    with torch.device("meta"):
        model = timm.create_model(name)
    rates = []
    for blk in model.blocks:
        if isinstance(blk, PatchMerge):
            assert not hasattr(blk, "drop_path")  # merges take no value of the schedule
            continue
        rates.append(blk.drop_path.drop_prob if hasattr(blk.drop_path, "drop_prob") else 0.0)
    depths = {"tiny": (1, 1, 10), "small": (2, 2, 20), "base": (2, 2, 24)}[BIG[name][1]]
    n = 2 * depths[0] + 2 * depths[1] + depths[2]
    assert rates == torch.linspace(0, rate, n).tolist()
    assert isinstance(model.blocks[0].drop_path, nn.Identity) and rates[-1] == pytest.approx(rate)


def test_drop_path_rate_override_and_mlp_only_stem():
    model = small_model(drop_path_rate=0.2)
    kinds = ["merge" if isinstance(b, PatchMerge) else ("attn" if b.attn is not None else "mlp") for b in model.blocks]
    assert kinds == ["mlp", "mlp", "merge", "mlp", "mlp", "merge", "attn", "attn"]
    assert model.blocks[-1].drop_path.drop_prob == pytest.approx(0.2)


def test_init_matches_mmpretrain():
    torch.manual_seed(0)
    model = timm.create_model("hivit_tiny_patch16_224", img_size=64)
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            # trunc_normal_(std=0.02) truncates at +-2 absolute (as mmengine's does): a plain N(0, 0.02)
            assert m.weight.std().item() == pytest.approx(0.02, rel=0.1), name
            assert m.bias is None or not m.bias.any()
        elif isinstance(m, nn.LayerNorm):
            assert (m.weight == 1).all() and not m.bias.any()
    assert model.pos_embed.std().item() == pytest.approx(0.02, rel=0.1)
    assert model.blocks[6].attn.relative_position_bias_table.std().item() == pytest.approx(0.02, rel=0.25)
    # the stem conv keeps PyTorch's default (kaiming-uniform, bound 1/sqrt(fan_in) for 3*4*4 inputs)
    assert model.patch_embed.proj.weight.abs().max() > 0.1


# ------------------------------------------------------------------------------- checkpoints
def _load(name, path, **kw):
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kw)


def test_mmpretrain_checkpoint_gives_mmpretrain_logits():
    """Fixture made by mmpretrain 1.2.0 (ImageClassifier, HiViT ape+rpe, GAP, linear head)."""
    io = torch.load(DATA / "hivit_mmpretrain_32_io.pt", weights_only=True)
    kw = io["kit_kwargs"]
    model = timm.create_model(
        "hivit_workshop_32",
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(DATA / "hivit_mmpretrain_32.pth"), num_classes=kw["num_classes"]),
        **kw,
    ).eval()
    ckpt = torch.load(DATA / "hivit_mmpretrain_32.pth", weights_only=True)["state_dict"]
    assert torch.equal(model.head.weight, ckpt["head.fc.weight"])  # the head was loaded, not dropped
    for key, value in ckpt.items():  # our generated index buffers equal mmpretrain's
        if key.endswith("relative_position_index"):
            built = HiViT(**kw).state_dict()[key.removeprefix("backbone.")]
            assert torch.equal(built, value), key
    for fused in (False, True):
        set_fused(model, fused)
        with torch.no_grad():
            torch.testing.assert_close(model(io["input"]), io["logits"], rtol=0, atol=1e-5)


def test_mmpretrain_checkpoint_loads_strictly(tmp_path):
    io = torch.load(DATA / "hivit_mmpretrain_32_io.pt", weights_only=True)
    kw = io["kit_kwargs"]
    ckpt = torch.load(DATA / "hivit_mmpretrain_32.pth", weights_only=True)
    extra = {"state_dict": {**ckpt["state_dict"], "backbone.unknown": torch.zeros(1)}}
    missing = {"state_dict": {k: v for k, v in ckpt["state_dict"].items() if not k.endswith("blocks.7.norm2.bias")}}
    for bad, word in ((extra, "unknown"), (missing, "blocks.7.norm2.bias")):
        torch.save(bad, tmp_path / "bad.pth")
        with pytest.raises(RuntimeError, match=word):
            timm.create_model(
                "hivit_workshop_32",
                pretrained=True,
                **kw,
                pretrained_cfg_overlay=dict(file=str(tmp_path / "bad.pth"), num_classes=5),
            )


@pytest.mark.filterwarnings("ignore::UserWarning")  # timm's table resize warns about its own indexing
def test_mmpretrain_checkpoint_into_another_image_size():
    """Fine-tuning at another size: pos_embed and bias tables are resampled, index buffers rebuilt."""
    io = torch.load(DATA / "hivit_mmpretrain_32_io.pt", weights_only=True)
    kw = {**io["kit_kwargs"], "img_size": 64}
    model = timm.create_model(
        "hivit_workshop_32",
        pretrained=True,
        **kw,
        pretrained_cfg_overlay=dict(file=str(DATA / "hivit_mmpretrain_32.pth"), num_classes=5),
    )
    assert model.pos_embed.shape == (1, 64, 32)
    assert torch.equal(model.blocks[6].attn.relative_position_index, HiViT(**kw).blocks[6].attn.relative_position_index)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


@pytest.mark.parametrize("layout", ["plain", "model", "state_dict", "ddp"])
def test_own_checkpoint_round_trip(tmp_path, layout):
    model = small_model().eval()
    perturb(model)
    sd = model.state_dict()
    obj = {
        "plain": sd,
        "model": {"model": sd, "epoch": 3},
        "state_dict": {"state_dict": sd},
        "ddp": {"model": {f"module.{k}": v for k, v in sd.items()}},
    }[layout]
    torch.save(obj, tmp_path / "ckpt.pth")
    # the pretrained_cfg's num_classes describes the file (timm's rule): 3 classes here, so say so
    loaded = timm.create_model(
        "hivit_workshop_32",
        pretrained=True,
        **SMALL,
        pretrained_cfg_overlay=dict(file=str(tmp_path / "ckpt.pth"), num_classes=3),
    ).eval()
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, sd[k]), k
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_other_class_count_drops_the_head(tmp_path):
    """timm's rule: a file whose class count (pretrained_cfg num_classes) differs from the model's
    loads without its head, which keeps its fresh init (fine-tuning on another label set)."""
    model = small_model(num_classes=10)
    torch.save(model.state_dict(), tmp_path / "ckpt.pth")
    loaded = _load("hivit_workshop_32", tmp_path / "ckpt.pth", **{**SMALL, "num_classes": 4})
    assert loaded.head.out_features == 4
    assert torch.equal(loaded.blocks[6].mlp.fc1.weight, model.blocks[6].mlp.fc1.weight)


def test_pretrained_without_a_file_fails_clearly(tmp_path):
    with pytest.raises(RuntimeError, match="pretrained_cfg_overlay=dict\\(file="):
        timm.create_model("hivit_tiny_patch16_224", pretrained=True)
    with pytest.raises(UserError, match="nope.pth: no such checkpoint file"):
        _load("hivit_workshop_32", tmp_path / "nope.pth")


# ------------------------------------------------------------------------------- masked path
def test_random_masking_ids():
    g = torch.Generator().manual_seed(0)
    ids = random_masking_ids(4, 64, 0.75, generator=g)
    assert ids.shape == (4, 16) and ids.dtype == torch.long
    for row in ids:
        assert torch.equal(row, row.unique()) and 0 <= row.min() and row.max() < 64
    assert torch.equal(ids, random_masking_ids(4, 64, 0.75, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(ids[0], ids[1])
    assert random_masking_ids(2, 196, 0.75).shape == (2, 49)  # int(196 * 0.25), as MAE
    with pytest.raises(ValueError):
        random_masking_ids(2, 64, 1.0)


def test_stem_of_kept_tokens_equals_full_stem():
    model = small_model(img_size=64).eval()  # 8x8 main tokens, 2x2 stem conv
    perturb(model)
    x = torch.randn(3, 3, 64, 64)
    ids = random_masking_ids(3, 64, 0.75, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model.forward_stem(x)
        kept = model.forward_stem(x, ids)
    assert kept.shape == (3, 16, 32)
    torch.testing.assert_close(kept, torch.stack([full[b, ids[b]] for b in range(3)]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fused", [False, True])
def test_all_tokens_in_any_order_equals_full_forward(fused):
    """ids_keep = a permutation of all tokens: output rows are the full output's rows, permuted
    (checks that pos_embed and the RPE rows/cols travel with their tokens)."""
    model = small_model(img_size=64).eval()
    perturb(model)
    set_fused(model, fused)
    x = torch.randn(2, 3, 64, 64)
    perm = torch.stack([torch.randperm(64, generator=torch.Generator().manual_seed(s)) for s in (3, 4)])
    with torch.no_grad():
        full = model.forward_features(x)
        permuted = model.forward_features(x, perm)
    torch.testing.assert_close(permuted, torch.stack([full[b, perm[b]] for b in range(2)]), rtol=0, atol=1e-5)


def _reference_restricted_forward(model: HiViT, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The full network where every attention ignores masked keys (explicit math, written here
    independently): rows of kept tokens only depend on kept tokens, so they are the restricted network."""
    tokens = model.forward_stem(x) + model.pos_embed  # (B, N, D), all tokens
    B, N, D = tokens.shape
    key_mask = torch.zeros(B, N, dtype=torch.bool)
    key_mask[torch.arange(B)[:, None], keep] = True
    for blk in model.blocks[model.num_stem_modules :]:
        attn = blk.attn
        h = attn.num_heads
        q, k, v = attn.qkv(blk.norm1(tokens)).reshape(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)
        bias = attn.relative_position_bias_table[attn.relative_position_index.reshape(-1)].reshape(N, N, h)
        logits = q @ k.transpose(-2, -1) * attn.scale + bias.permute(2, 0, 1)
        logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, N, D)
        tokens = tokens + attn.proj(out)
        tokens = tokens + blk.mlp(blk.norm2(tokens))
    return torch.stack([tokens[b, keep[b]] for b in range(B)])


@pytest.mark.parametrize("fused", [False, True])
def test_masked_forward_is_the_network_restricted_to_kept_tokens(fused):
    model = small_model(img_size=64, depths=(1, 1, 3)).eval()
    perturb(model)
    set_fused(model, fused)
    x = torch.randn(3, 3, 64, 64)
    ids = random_masking_ids(3, 64, 0.75, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        masked = model.forward_features(x, ids)
        ref = _reference_restricted_forward(model, x, ids)
        assert model(x, ids).shape == (3, 3)
    torch.testing.assert_close(masked, ref, rtol=0, atol=1e-5)


# ------------------------------------------------------------------ attention paths and grads
def test_fused_and_explicit_attention_agree_and_hooks_see_maps():
    model = small_model(img_size=64).eval()
    perturb(model)
    x = torch.randn(2, 3, 64, 64)
    attn = model.blocks[-1].attn
    assert attn.fused_attn in (True, False)
    set_fused(model, True)
    with torch.no_grad():
        fused = model(x)
    set_fused(model, False)
    maps = []
    handle = attn.attn_drop.register_forward_hook(lambda m, i, o: maps.append(o))
    with torch.no_grad():
        explicit = model(x)
    handle.remove()
    torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-5)
    assert maps[0].shape == (2, 2, 64, 64)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, 64))


@pytest.mark.parametrize("masked", [False, True])
def test_gradients_reach_every_parameter(masked):
    model = small_model(drop_path_rate=0.0).train()
    x = torch.randn(4, 3, 32, 32)
    ids = random_masking_ids(4, 16, 0.5, generator=torch.Generator().manual_seed(0)) if masked else None
    model(x, ids).logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if masked:  # pos_embed rows of tokens no sample kept get no gradient
        never = torch.ones(16, dtype=torch.bool)
        never[ids.unique()] = False
        assert not model.pos_embed.grad[0, never].any()


def test_grad_checkpointing_gives_same_gradients():
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for ckpt in (False, True):
        model = small_model(drop_path_rate=0.0)
        model.set_grad_checkpointing(ckpt)
        model(x).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_sdpa_runs_only_where_it_pays(monkeypatch):
    import kit.models.hivit as hivit_module

    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        hivit_module.F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or sdpa(*a, **k)
    )
    x = torch.randn(1, 3, 32, 32)
    model = small_model()
    set_fused(model, True)
    model(x)
    assert len(calls) == 2  # forced (fixture): both attention blocks use SDPA
    monkeypatch.setattr(Attention, "sdpa_on_cpu_with_bias", False)
    calls.clear()
    model(x)
    assert not calls  # default on the CPU with a bias: explicit path
    no_rpe = small_model(rpe=False)
    set_fused(no_rpe, True)
    no_rpe(x)
    assert len(calls) == 2 and "relative_position_index" not in no_rpe.state_dict()
