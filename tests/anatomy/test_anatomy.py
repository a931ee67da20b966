"""kit.anatomy (stages, flops, attention, report, command): parameters, FLOPs, shapes, attention, talking heads
and LayerScale, on CaiT and HiViT."""

from __future__ import annotations

import json
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.layout_engine import ConstrainedLayoutEngine  # noqa: E402

import kit.anatomy as A  # noqa: E402
import kit.models  # noqa: E402,F401  (registers the kit's models in timm)
from kit.anatomy import plots as P  # noqa: E402
from kit.cli import main as kit_main  # noqa: E402

D, H, N = 96, 4, 16  # cait_workshop_32: width, heads, tokens (4x4)


@pytest.fixture(scope="module")
def cait():
    torch.manual_seed(0)
    return timm.create_model("cait_workshop_32").eval()


@pytest.fixture(scope="module")
def hivit():
    torch.manual_seed(0)
    return timm.create_model("hivit_workshop_32").eval()


def image(batch: int = 1, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------------------- parameters
def test_cait_stages_and_param_counts(cait):
    rows = A.param_table(cait)
    names = [r["name"] for r in rows]
    depth = len(cait.blocks)
    assert names == (["patch_embed", "pos_embed+cls_token"] + [f"blocks.{i}" for i in range(depth)]
                     + ["blocks_token_only.0", "blocks_token_only.1", "norm", "head"])
    kinds = {r["name"]: r["kind"] for r in rows}
    assert kinds["blocks.0"] == "self-attention (talking heads)"
    assert kinds["blocks_token_only.1"] == "class attention"
    assert kinds["head"] == "classifier" and kinds["norm"] == "norm"
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in cait.parameters())
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert kinds["pos_embed+cls_token"] == "embedding"
    assert rows[1]["params"] == N * D + D


def test_hivit_stages_follow_the_flat_blocks_list(hivit):
    rows = A.param_table(hivit)
    kinds = [(r["name"], r["kind"]) for r in rows]
    stem = hivit.num_stem_modules
    assert kinds[0] == ("patch_embed", "patch embedding")
    assert [k for _, k in kinds[1 : stem + 1]] == ["MLP block", "MLP block", "merge"] * 2
    assert kinds[stem + 1] == ("pos_embed", "embedding")  # added at the entry of the main stage
    assert {k for _, k in kinds[stem + 2 : -1]} == {"self-attention"}
    assert kinds[-1] == ("head", "classifier")
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in hivit.parameters())


def test_param_counts_sum_for_a_timm_cait_on_meta():
    with torch.device("meta"):
        model = timm.create_model("cait_s24_224")
    rows = A.param_table(model)
    assert len(rows) == 2 + 24 + 2 + 2
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------ FLOPs
def test_cait_flops_match_the_block_formulas(cait):
    f = A.count_flops(cait, image())
    assert f["total"] > 0 and f["outside"] == 0
    sa = 2 * N * D * (3 * D + D + 8 * D) + 2 * 2 * H * N * N * (D // H) + 2 * 2 * N * N * H * H
    assert f["stages"]["blocks.0"] == sa  # qkv, proj, MLP; q k^T and weights x v; talking heads proj_l, proj_w
    n1 = N + 1  # class token + patches as keys
    ca = 2 * D * D + 2 * 2 * n1 * D * D + 2 * D * D + 2 * 2 * D * 4 * D + 2 * 2 * H * n1 * (D // H)
    # the last term is the fused CPU SDPA op, which torch does not count without the kit's formula
    assert f["stages"]["blocks_token_only.0"] == ca
    assert f["stages"]["head"] == 2 * D * 10
    assert sum(f["stages"].values()) == f["total"]
    assert A.count_flops(cait, image(batch=3))["total"] == f["total"]  # per image


def test_flops_scale_with_image_size():
    torch.manual_seed(0)
    small = A.count_flops(timm.create_model("cait_workshop_32", img_size=32))
    big = A.count_flops(timm.create_model("cait_workshop_32", img_size=64))  # 4x the tokens
    assert big["stages"]["patch_embed"] == 4 * small["stages"]["patch_embed"]
    assert big["stages"]["head"] == small["stages"]["head"]
    ratio = big["stages"]["blocks.0"] / small["stages"]["blocks.0"]
    assert 4 < ratio < 16  # linear layers x4, attention x16
    assert big["total"] > 4 * small["total"]


def test_hivit_flops_cover_every_stage(hivit):
    f = A.count_flops(hivit, image())
    assert f["total"] > 0 and sum(f["stages"].values()) == f["total"]
    assert all(f["stages"][r["name"]] > 0 for r in A.param_table(hivit) if r["kind"] != "embedding")


# ----------------------------------------------------------------------------------------- shapes
def test_shapes_recorded_for_every_stage(cait, hivit):
    shapes = A.stage_shapes(cait, image(batch=2))
    modules = [s.name for s in A.stages(cait) if s.module is not None]
    assert set(modules) | {"input"} == set(shapes)
    assert shapes["patch_embed"] == dict(inputs=[[2, 3, 32, 32]], output=[2, N, D])
    assert shapes["blocks_token_only.0"] == dict(inputs=[[2, N, D], [2, 1, D]], output=[2, 1, D])
    assert shapes["norm"]["output"] == [2, N + 1, D] and shapes["head"]["output"] == [2, 10]

    shapes = A.stage_shapes(hivit, image())
    dim, n = hivit.embed_dim, hivit.num_patches
    assert {s.name for s in A.stages(hivit) if s.module is not None} <= set(shapes)
    assert shapes["blocks.0"]["output"] == [1, n, 4, 4, dim // 4]  # n main tokens of 4x4 inner patches
    assert shapes["blocks.2"]["output"] == [1, n, 2, 2, dim // 2]  # a merge halves the inner grid
    assert shapes[f"blocks.{hivit.num_stem_modules}"]["inputs"] == [[1, n, dim]]


# -------------------------------------------------------------------------------------- attention
def test_cait_attention_maps(cait):
    with torch.no_grad():  # perturb biases so the talking-heads row sums below are not trivially 0
        for blk in cait.blocks:
            blk.attn.proj_w.bias.normal_(0, 0.1)
    maps = A.attention_maps(cait, image(batch=2))
    class_blocks = {"blocks_token_only.0", "blocks_token_only.1"}
    assert set(maps) == {f"blocks.{i}" for i in range(len(cait.blocks))} | class_blocks
    ca = maps["blocks_token_only.0"]
    assert ca.shape == (2, H, 1, N + 1)
    assert torch.allclose(ca.sum(-1), torch.ones(2, H, 1), atol=1e-5) and (ca >= 0).all()
    th = maps["blocks.0"]  # weights after proj_w: sum over keys = sum_h' W[h, h'] + N * b[h]
    pw = cait.blocks[0].attn.proj_w
    expected = pw.weight.sum(1) + N * pw.bias
    assert torch.allclose(th.sum(-1), expected[None, :, None].expand(2, H, N), atol=1e-4)


def test_hivit_attention_maps_sum_to_one(hivit):
    maps = A.attention_maps(hivit, image())
    main = [f"blocks.{i}" for i in range(hivit.num_stem_modules, len(hivit.blocks))]
    assert list(maps) == main
    heads, n = hivit.blocks[-1].attn.num_heads, hivit.num_patches
    for w in maps.values():
        assert w.shape == (1, heads, n, n)
        assert torch.allclose(w.sum(-1), torch.ones(1, heads, n), atol=1e-5)


@pytest.mark.parametrize("name", ["cait", "hivit"])
def test_fused_attn_restored_even_on_error(name, request):
    model = request.getfixturevalue(name)
    flagged = [m for m in model.modules() if hasattr(m, "fused_attn")]
    assert flagged
    for i, m in enumerate(flagged):
        m.fused_attn = i % 2 == 0
    before = [m.fused_attn for m in flagged]
    A.attention_maps(model, image())
    assert [m.fused_attn for m in flagged] == before
    with pytest.raises(Exception):
        A.attention_maps(model, torch.randn(1, 3, 16, 16))  # wrong input size: the forward fails
    assert [m.fused_attn for m in flagged] == before
    for m in flagged:
        m.fused_attn = True


# ------------------------------------------------------------------------- talking heads, LayerScale
def test_talking_heads_read_off_the_modules(cait):
    rows = A.talking_heads(cait)
    assert [r["block"] for r in rows] == [f"blocks.{i}" for i in range(len(cait.blocks))]
    assert torch.equal(torch.tensor(rows[0]["proj_l"]), cait.blocks[0].attn.proj_l.weight.detach())
    with torch.no_grad():
        cait.blocks[1].attn.proj_l.weight.copy_(torch.eye(H))
        cait.blocks[1].attn.proj_w.weight.zero_()
    row = A.talking_heads(cait)[1]
    assert row["proj_l_dist_identity"] == pytest.approx(0.0) and row["proj_l_offdiag"] == 0.0
    assert row["proj_w_dist_identity"] == pytest.approx(1.0)


def test_layerscale_ratios_match_a_hand_computation():
    torch.manual_seed(0)
    model = timm.create_model("cait_workshop_32").eval()
    x = image(batch=2)
    rows = A.layerscale(model, x)
    assert [r["block"] for r in rows][-2:] == ["blocks_token_only.0", "blocks_token_only.1"]
    assert rows[0]["gamma_1_mean"] == pytest.approx(0.1) and rows[0]["gamma_2_max"] == pytest.approx(0.1)
    with torch.no_grad():
        blk = model.blocks[0]
        stream = model.patch_embed(x) + model.pos_embed
        attn = blk.gamma_1 * blk.attn(blk.norm1(stream))
        mid = stream + attn
        mlp = blk.gamma_2 * blk.mlp(blk.norm2(mid))
    assert rows[0]["attn_ratio"] == pytest.approx(float((attn.norm(dim=-1) / stream.norm(dim=-1)).mean()), rel=1e-4)
    assert rows[0]["mlp_ratio"] == pytest.approx(float((mlp.norm(dim=-1) / mid.norm(dim=-1)).mean()), rel=1e-4)
    with torch.no_grad():
        model.blocks[0].gamma_1.mul_(3)
    assert A.layerscale(model, x)[0]["attn_ratio"] == pytest.approx(3 * rows[0]["attn_ratio"], rel=1e-4)


def test_residual_ratios_without_layerscale(hivit):
    rows = A.layerscale(hivit, image())
    by_kind = {r["kind"] for r in rows}
    assert by_kind == {"MLP block", "self-attention"}
    for r in rows:
        assert r["gamma_1_mean"] is None and r["mlp_ratio"] > 0
        assert (r["attn_ratio"] is None) == (r["kind"] == "MLP block")


# ------------------------------------------------------------------------------------------ plots
def test_plots_return_figures(cait, hivit, tmp_path):
    figs = [
        P.plot_param_table(cait),
        P.plot_attention_maps(A.attention_maps(cait, image()), blocks=["blocks_token_only.0", "blocks.0"],
                              image=image()[0]),
        P.plot_attention_maps(A.attention_maps(hivit, image())),
        P.plot_layerscale(A.layerscale(cait, image())),
        P.plot_talking_heads(A.talking_heads(cait), blocks=[0, -1]),
    ]
    for i, fig in enumerate(figs):
        assert isinstance(fig, Figure)
        fig.savefig(tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").stat().st_size > 1000
    assert len(figs[0].axes[0].patches) == len(A.param_table(cait))
    with pytest.raises(ValueError, match="no talking-heads"):
        P.plot_talking_heads(A.talking_heads(hivit))


def test_notebook_two_figures(cait, hivit, tmp_path):
    """The figures notebook 2 adds: the merge, locality, masked units, and fresh-vs-trained overlays (one layout
    engine each, no warnings)."""
    from kit.models.hivit import random_masking_ids

    where = torch.arange(16.0).reshape(4, 4)[None, None, ..., None]
    stacked = torch.cat([where[:, :, i::2, j::2] for i, j in ((0, 0), (1, 0), (0, 1), (1, 1))], dim=-1)[0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = [
            P.plot_patch_merge(stacked, torch.tensor([0.0, 0.3, 0.0, 0.0]), grid=(2, 2)),
            P.plot_locality({"a": torch.rand(4, 4), "b": torch.zeros(16, 16)}, {"a": 1, "b": 4}, image=image()[0],
                            box=(8, 8, 8, 8)),
            P.plot_masked_units(np.zeros((64, 64, 3), dtype=np.uint8), random_masking_ids(1, 16, 0.75)[0], (4, 4),
                                {0.0: 0.2, 0.75: 0.05}),
            P.plot_layerscale({"fresh": A.layerscale(cait, image()), "trained": A.layerscale(cait, image())}),
            P.plot_talking_heads({"fresh": A.talking_heads(cait), "trained": A.talking_heads(cait)}),
            P.plot_attention_maps(A.attention_maps(cait, image()), blocks=["blocks_token_only.0"], vmax=1.0),
        ]
        for i, fig in enumerate(figs):
            assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
            fig.savefig(tmp_path / f"{i}.png")
    merge_panel = figs[0].axes[0]
    # merged patch (0, 0) holds inner patches 0, 4, 1, 5 in its channel blocks x0..x3 (mmpretrain's order)
    assert [t.get_text().split("\n")[0] for t in merge_panel.texts[:4]] == ["0", "4", "1", "5"]
    assert len(figs[4].axes) >= 4 * len(A.talking_heads(cait))  # proj_l and proj_w, fresh and trained (+ colour bars)
    assert figs[5].axes[1].images[0].get_clim() == (0.0, 1.0)


def test_patch_grid_keeps_one_layout_engine(tmp_path):
    digit = np.zeros((64, 64, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "The figure layout has changed to tight"
        fig = P.plot_patch_grid(digit, patch_size=16, inner_patches=4)
        fig.savefig(tmp_path / "grid.png")
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    left, right = fig.axes
    assert len(left.lines) == 2 * (64 // 16 + 1)  # main-token edges, rows and columns
    assert len(right.lines) == 2 * (64 // 4 + 1) + 2 * (64 // 16 + 1)  # inner-patch edges as well


# -------------------------------------------------------------------------------------------- CLI
def test_cli_prints_the_tables(capsys):
    assert kit_main(["anatomy", "cait_workshop_32"]) == 0
    out = capsys.readouterr().out
    assert "blocks_token_only.1" in out and "class attention" in out and "talking heads" in out
    assert f"{sum(p.numel() for p in timm.create_model('cait_workshop_32').parameters()):,} parameters" in out


def test_cli_json_and_options(capsys, tmp_path):
    assert kit_main(["anatomy", "hivit_workshop_32", "--json", "--num-classes", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_classes"] == 3 and report["input_size"] == [3, 32, 32]
    assert sum(r["params"] for r in report["stages"]) == report["total_params"]
    assert report["stages"][-1]["output"] == [1, 3]

    path = tmp_path / "w.pth"
    torch.save({"model": timm.create_model("cait_workshop_32", img_size=64).state_dict()}, path)
    assert kit_main(["anatomy", "cait_workshop_32", "--img-size", "64", "--checkpoint", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == [3, 64, 64]


@pytest.mark.parametrize("argv, message", [
    (["anatomy", "no_such_model"], "unknown model 'no_such_model'"),
    (["anatomy", "cait_workshop_32", "--img-size", "0"], "--img-size must be positive"),
    (["anatomy", "cait_workshop_32", "--checkpoint", "missing.pth"], "missing.pth: no such checkpoint file"),
])
def test_cli_user_errors(argv, message, capsys):
    assert kit_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_attention_maps_of_chosen_blocks(cait):
    maps = A.attention_maps(cait, image(), blocks=["blocks_token_only.1"])
    assert list(maps) == ["blocks_token_only.1"]
    with pytest.raises(ValueError, match="no attention block named"):
        A.attention_maps(cait, image(), blocks=["blocks.99"])
    cait.train()
    A.attention_maps(cait, image())
    assert cait.training  # the model's mode is put back
    cait.eval()


def test_the_architecture_diagram_has_a_box_per_stage():
    from matplotlib.patches import FancyBboxPatch

    report = A.anatomy(kit.models.create("cait_workshop_32").eval(), name="cait_workshop_32")
    fig = P.plot_architecture(report)
    boxes = [p for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == len(report.stages)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "blocks_token_only.0" in texts and any("class token" in t for t in texts)
