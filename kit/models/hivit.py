"""HiViT: a hierarchical ViT whose hierarchy never mixes tokens before the main stage.

Paper: "HiViT: A Simple and More Efficient Design of Hierarchical Vision Transformer"
(arXiv 2205.14949). This file rebuilds the model the way mmpretrain 1.2.0 builds it (same layers,
same parameter names and shapes, same init, same drop-path schedule), from ``timm.layers`` parts,
and registers it in timm so ``timm.create_model("hivit_tiny_patch16_224")`` works after
``import kit``.

Why the design matters (and why this file has a masked forward):

* The stem cuts the image into 4x4-pixel *inner patches* (one strided conv) and groups them by
  *main token* (16x16 pixels for the 224 models): a tensor (B, N, 4, 4, C). The two stem stages
  are MLP-only blocks and patch merges that merge 2x2 inner patches *inside* one main token, so no
  information crosses main-token boundaries until the attention blocks of the main stage.
* Therefore dropping main tokens (MAE-style masking) is exact at every layer: run the stem on the
  kept tokens only, gather their absolute position embeddings, and restrict each attention block's
  relative position bias to the kept rows and columns. ``forward_features(x, ids_keep=...)`` does
  exactly that, so the masked network is the same network, restricted to the kept set.

State-dict names equal mmpretrain's backbone names (``patch_embed.proj``, ``pos_embed``, one flat
``blocks`` list that also holds the two merges, persistent ``relative_position_index`` buffers) plus
a timm-style ``head``; :func:`kit.models.hivit_weights.checkpoint_filter_fn` maps an mmpretrain checkpoint
(``backbone.*``, ``head.fc.*``) onto it. Load one with::

    timm.create_model("hivit_tiny_patch16_224", pretrained=True,
                      pretrained_cfg_overlay=dict(file="hivit-tiny.pth"))

Nothing is ever downloaded: the registered configs have no URL.

mmpretrain quirks deliberately *not* copied: the masked forward resamples pos_embed (we gather it
exactly); layer-decay grouping by a prefix that does not exist (``group_matcher`` here groups the real
blocks); a shared mutable ``out_indices`` default, also tested against stem module indices (so an
arch whose last main index is below the number of stem modules, e.g. depths [1, 1, 2], breaks its
forward); a ``_freeze_stages`` that crashes. Not built (no mmpretrain config uses them): LayerScale,
overlapping stem convs, the 3-D branch of PatchMerge, the per-key attention mask argument.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import (
    DropPath,
    Mlp,
    PatchEmbed,
    gen_relative_position_index,
    trunc_normal_,
    use_fused_attn,
)
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch.utils.checkpoint import checkpoint

from kit.models import weights
from kit.models.hivit_weights import checkpoint_filter_fn

__all__ = ["HiViT", "checkpoint_filter_fn", "random_masking_ids"]


def random_masking_ids(
    batch: int,
    num_tokens: int,
    mask_ratio: float,
    generator: Optional[torch.Generator] = None,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Ids (B, K) of the main tokens to keep, drawn uniformly per sample, as MAE does.

    K = int(num_tokens * (1 - mask_ratio)), the same count MAE keeps. The ids of each row are sorted
    (order does not change the result: the network is permutation-equivariant over kept tokens, but
    sorted ids are easier to read and to compare with a full forward).
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    keep = int(num_tokens * (1 - mask_ratio))
    noise = torch.rand(batch, num_tokens, generator=generator, device=device)
    return noise.argsort(dim=1)[:, :keep].sort(dim=1).values


def _gather_tokens(x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
    """x[b, ids_keep[b]] along axis 1, for any number of trailing axes."""
    index = ids_keep.reshape(*ids_keep.shape, *([1] * (x.ndim - 2)))
    return torch.gather(x, 1, index.expand(-1, -1, *x.shape[2:]))


def on_cpu_kernels(t: torch.Tensor) -> bool:
    """Whether ``t``'s operators run the CPU's kernels: a CPU tensor, or one on vitkit's emulated SDAA card.

    The CPU's speed rule (``Attention.sdpa_on_cpu_with_bias``) then applies, and the emulated card computes
    exactly what the CPU computes; a real card (``torch.sdaa.EMULATED`` absent) takes SDPA.
    """
    return t.is_cpu or (t.device.type == "sdaa" and bool(getattr(getattr(torch, "sdaa", None), "EMULATED", False)))


class Attention(nn.Module):
    """Multi-head self-attention with an optional relative position bias (Swin-style table).

    ``fused_attn`` picks ``F.scaled_dot_product_attention`` (the bias goes in as a float
    ``attn_mask``, the same math; see ``sdpa_on_cpu_with_bias`` for the CPU exception); with
    ``fused_attn = False`` the explicit path always runs and its softmaxed weights
    (B, heads, Nq, Nk) pass through ``self.attn_drop`` so hooks can read them.
    """

    fused_attn: bool
    #: On the CPU, SDPA with a float mask measured slower than the explicit path (bench/bench_hivit.py:
    #: with a mask that needs grad it falls back to its math kernel; in eval it gains nothing), so
    #: with a relative position bias on a CPU tensor the explicit path runs even when ``fused_attn``
    #: is on. Set this class attribute to True to force SDPA there (tests do, to check both paths).
    sdpa_on_cpu_with_bias: bool = False

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid_size: int,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        rpe: bool = True,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.fused_attn = use_fused_attn()
        if rpe:
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * grid_size - 1) ** 2, num_heads))
            self.register_buffer(
                "relative_position_index", gen_relative_position_index((grid_size, grid_size)), persistent=True
            )
        else:
            self.relative_position_bias_table = None
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def rel_pos_bias(self, ids_keep: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """Bias (1, heads, N, N), or (B, heads, K, K) restricted to the kept tokens' rows and columns."""
        if self.relative_position_bias_table is None:
            return None
        index = self.relative_position_index
        if ids_keep is None:
            index = index.unsqueeze(0)
        else:
            index = index[ids_keep[:, :, None], ids_keep[:, None, :]]
        return self.relative_position_bias_table[index].permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, ids_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = self.rel_pos_bias(ids_keep)
        if self.fused_attn and (bias is None or not on_cpu_kernels(q) or self.sdpa_on_cpu_with_bias):
            x = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=None if bias is None else bias.to(q.dtype),
                dropout_p=self.attn_drop.p if self.training else 0.0,
                scale=self.scale,
            )
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                attn = attn + bias
            attn = self.attn_drop(attn.softmax(dim=-1))
            x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    """Pre-norm residual block; MLP-only when ``num_heads == 0`` (the stem blocks).

    Names follow mmpretrain's BlockWithRPE: an MLP-only block has no ``norm1``/``attn`` but keeps
    the MLP's norm as ``norm2``. Stem blocks run on the 5-D tensor (B, N, h, w, C), i.e. on every
    inner patch on its own.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        grid_size: int,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        rpe: bool = True,
        act_layer: type[nn.Module] = nn.GELU,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ):
        super().__init__()
        if num_heads > 0:
            self.norm1 = norm_layer(dim)
            self.attn = Attention(dim, num_heads, grid_size, qkv_bias, qk_scale, attn_drop, proj_drop, rpe)
        else:
            self.norm1 = self.attn = None
        # mmpretrain holds an Identity where the rate is 0 (the first block); so do we.
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=(0.0, proj_drop))

    def forward(self, x: torch.Tensor, ids_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.attn is not None:
            x = x + self.drop_path(self.attn(self.norm1(x), ids_keep))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerge(nn.Module):
    """Merge 2x2 inner patches of every main token: (B, N, h, w, C) -> (B, N, h/2, w/2, 2C).

    Channel order of the 4C concat is mmpretrain's: (even row, even col), (odd row, even col),
    (even row, odd col), (odd row, odd col); one reshape + permute produces it in a single copy.
    """

    def __init__(self, dim: int, norm_layer: type[nn.Module] = nn.LayerNorm):
        super().__init__()
        self.norm = norm_layer(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, h, w, C = x.shape
        x = x.reshape(B, N, h // 2, 2, w // 2, 2, C).permute(0, 1, 2, 4, 5, 3, 6)  # (.., col par, row par, C)
        x = x.reshape(B, N, h // 2, w // 2, 4 * C)
        return self.reduction(self.norm(x))


class HiViT(nn.Module):
    """HiViT classifier: inner-patch stem, MLP-only stem stages with merges, attention main stage,
    global average pool, linear head (mmpretrain's ImageClassifier + GlobalAveragePooling +
    LinearClsHead). There is no final norm, as in mmpretrain.

    ``drop_rate`` is mmpretrain's drop_rate (dropout after each MLP, after the attention projection
    and after adding pos_embed); the head has no dropout, as in mmpretrain's LinearClsHead.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        inner_patches: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        embed_dim: int = 384,
        depths: Sequence[int] = (1, 1, 10),
        num_heads: int = 6,
        stem_mlp_ratio: float = 3.0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        ape: bool = True,
        rpe: bool = True,
        patch_norm: bool = True,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
    ):
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        if patch_size % inner_patches or inner_patches != 2 ** (len(depths) - 1):
            raise ValueError(
                f"inner_patches ({inner_patches}) must divide patch_size ({patch_size}) and equal "
                f"2 ** (number of stages - 1) = {2 ** (len(depths) - 1)} so the merges end at one token"
            )
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.inner_patches = inner_patches
        self.grad_checkpointing = False

        stem_dim = embed_dim // 2 ** (len(depths) - 1)
        self.patch_embed = PatchEmbed(
            img_size=img_size, patch_size=patch_size // inner_patches, in_chans=in_chans, embed_dim=stem_dim,
            norm_layer=norm_layer if patch_norm else None, output_fmt="NHWC",
        )  # fmt: skip
        grid_h, grid_w = (g // inner_patches for g in self.patch_embed.grid_size)
        if rpe and grid_h != grid_w:
            raise ValueError(f"relative position bias needs a square token grid, got {grid_h}x{grid_w}")
        self.grid_size = (grid_h, grid_w)
        self.num_patches = grid_h * grid_w

        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, embed_dim)) if ape else None
        if rpe:
            # mmpretrain keeps a backbone-level copy (unused in its forward); kept so its checkpoints
            # load strictly.
            self.register_buffer(
                "relative_position_index", gen_relative_position_index((grid_h, grid_w)), persistent=True
            )
        self.pos_drop = nn.Dropout(drop_rate)

        # One linear drop-path schedule over every residual block (stem MLP blocks count, merges do not);
        # float32 values as torch.linspace gives them, computed on the CPU so meta-device builds work.
        num_stem = 2 * sum(depths[:-1])
        dpr = torch.linspace(0, drop_path_rate, num_stem + depths[-1], device="cpu").tolist()
        blocks: list[nn.Module] = []
        dim = stem_dim
        for stage, depth in enumerate(depths):
            is_main = stage == len(depths) - 1
            for _ in range(depth if is_main else 2 * depth):
                blocks.append(Block(
                    dim, num_heads=num_heads if is_main else 0, mlp_ratio=mlp_ratio if is_main else stem_mlp_ratio,
                    grid_size=grid_h, qkv_bias=qkv_bias, qk_scale=qk_scale, proj_drop=drop_rate,
                    attn_drop=attn_drop_rate, drop_path=dpr.pop(0), rpe=rpe, act_layer=act_layer, norm_layer=norm_layer,
                ))  # fmt: skip
            if not is_main:
                blocks.append(PatchMerge(dim, norm_layer))
                dim *= 2
        self.blocks = nn.ModuleList(blocks)
        self.num_stem_modules = len(blocks) - depths[-1]

        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    # ----------------------------------------------------------------------------------- init
    def init_weights(self) -> None:
        """mmpretrain's init: trunc-normal(0.02) for every Linear (head included) and for pos_embed and
        the bias tables, zero biases, LayerNorm (1, 0); the stem conv keeps PyTorch's default."""
        if self.pos_embed is not None:
            trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, Attention) and m.relative_position_bias_table is not None:
                trunc_normal_(m.relative_position_bias_table, std=0.02)

    # ------------------------------------------------------------------------- timm interface
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Position tables do not decay (mmpretrain's custom_keys); 1-D params are excluded by timm."""
        names = {n for n, _ in self.named_parameters() if n.endswith("relative_position_bias_table")}
        return names | ({"pos_embed"} if self.pos_embed is not None else set())

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(stem=r"^pos_embed|^patch_embed", blocks=[(r"^blocks\.(\d+)", None)])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    # -------------------------------------------------------------------------------- forward
    def forward_stem(self, x: torch.Tensor, ids_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Image (B, 3, H, W) -> main tokens (B, N, D) before pos_embed; (B, K, D) for the kept ids.

        The 5-D tensor (B, N, 4, 4, C) is gathered along the token axis right after the patch
        embedding, so the stem MLPs and merges only ever see kept tokens (exact: they never mix tokens).
        """
        x = self.patch_embed(x)  # (B, 4*gh, 4*gw, C), normed per inner patch
        B, H, W, C = x.shape
        p = self.inner_patches
        x = x.reshape(B, H // p, p, W // p, p, C).permute(0, 1, 3, 2, 4, 5).reshape(B, -1, p, p, C)
        if ids_keep is not None:
            x = _gather_tokens(x, ids_keep)
        for blk in self.blocks[: self.num_stem_modules]:
            x = checkpoint(blk, x, use_reentrant=False) if self.grad_checkpointing else blk(x)
        return x.flatten(2)  # (B, N, 1, 1, D) -> (B, N, D)

    def forward_features(self, x: torch.Tensor, ids_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Tokens after the last block: (B, N, D), or (B, K, D) when ``ids_keep`` (B, K) names the kept
        main tokens (see :func:`random_masking_ids`); the masked result is the same network restricted
        to the kept tokens (stem on kept tokens, exact pos_embed rows, RPE rows/cols of kept tokens)."""
        if ids_keep is not None:
            ids_keep = ids_keep.to(device=x.device, dtype=torch.long)
        x = self.forward_stem(x, ids_keep)
        if self.pos_embed is not None:
            pos = self.pos_embed
            if ids_keep is not None:  # the exact rows of the kept tokens (mmpretrain resamples here)
                pos = _gather_tokens(pos.expand(x.shape[0], -1, -1), ids_keep)
            x = x + pos
        x = self.pos_drop(x)
        for blk in self.blocks[self.num_stem_modules :]:
            if self.grad_checkpointing:
                x = checkpoint(blk, x, ids_keep, use_reentrant=False)
            else:
                x = blk(x, ids_keep)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = x.mean(dim=1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, ids_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, ids_keep))


def _create_hivit(variant: str, pretrained: bool = False, **kwargs) -> HiViT:
    """timm's builder without weights, then the local file ``pretrained=True`` names (kit.models.weights)."""
    return weights.build_offline(
        variant,
        pretrained,
        kwargs,
        lambda **kw: build_model_with_cfg(HiViT, variant, False, **kw),
        filter_fn=checkpoint_filter_fn,
    )


def _cfg(**kwargs) -> dict:
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": None,
        "crop_pct": 224 / 256,
        "interpolation": "bicubic",
        "fixed_input_size": True,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": "apache-2.0",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "hivit_tiny_patch16_224": _cfg(),
        "hivit_small_patch16_224": _cfg(),
        "hivit_base_patch16_224": _cfg(),
        "hivit_workshop_32": _cfg(num_classes=10, input_size=(3, 32, 32), crop_pct=1.0),
    }
)


# The mmpretrain classification configs: ape and rpe on, per-arch drop-path rate.
@register_model
def hivit_tiny_patch16_224(pretrained: bool = False, **kwargs) -> HiViT:
    args = dict(embed_dim=384, depths=(1, 1, 10), num_heads=6, drop_path_rate=0.05)
    return _create_hivit("hivit_tiny_patch16_224", pretrained, **dict(args, **kwargs))


@register_model
def hivit_small_patch16_224(pretrained: bool = False, **kwargs) -> HiViT:
    args = dict(embed_dim=384, depths=(2, 2, 20), num_heads=6, drop_path_rate=0.3)
    return _create_hivit("hivit_small_patch16_224", pretrained, **dict(args, **kwargs))


@register_model
def hivit_base_patch16_224(pretrained: bool = False, **kwargs) -> HiViT:
    args = dict(embed_dim=512, depths=(2, 2, 24), num_heads=8, drop_path_rate=0.5)
    return _create_hivit("hivit_base_patch16_224", pretrained, **dict(args, **kwargs))


@register_model
def hivit_workshop_32(pretrained: bool = False, **kwargs) -> HiViT:
    """Workshop size: 32x32 input, 10 classes, stage widths 16 / 32 / 64, 2 heads of 32.

    Patch 8: each main token (4x4 of them) carries 4x4 inner patches of 2x2 pixels, the same
    structure as the 224 models at a workshop scale. With patch 4 the inner patches would be single
    pixels: the stem then runs per pixel (1,024 inner patches per image), dominates the cost, and
    learns the digits far more slowly in the same minute.
    """
    args = dict(
        img_size=32, patch_size=8, num_classes=10, embed_dim=64, depths=(1, 1, 2), num_heads=2, drop_path_rate=0.05
    )
    return _create_hivit("hivit_workshop_32", pretrained, **dict(args, **kwargs))
