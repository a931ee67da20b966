"""CaiT (Touvron et al., "Going deeper with Image Transformers", arXiv 2103.17239): timm's model, a
32x32 workshop size, DeiT names, and offline checkpoint loading.

The architecture is timm's ``timm.models.cait`` and is not rewritten here. This file adds:

* ``cait_workshop_32``: a small CaiT for 32x32 images (8x8 tokens of 4x4 pixels), registered in timm,
  so ``timm.create_model("cait_workshop_32")`` works after ``import kit``.
* :func:`timm_name`: the DeiT repository calls the same models ``cait_S24_224``, ``cait_M48`` ... and
  its checkpoint files ``S24_224.pth`` ...; this maps either to timm's name.
* :func:`checkpoint_filter_fn`: timm's CaiT filter plus ``pos_embed`` resampling for another image size.
* Offline weights. ``timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=PATH))``
  loads a local checkpoint strictly, through :mod:`kit.models.weights` (the same rule as HiViT's).

Why the timm CaiT names are re-registered: timm's own entry points (a) go to the Hugging Face hub when
no file is given, and (b) load non-strictly when ``num_classes`` differs from the checkpoint's, only
*logging* the keys that did not fit. Neither can be changed through timm's public hooks (the load
filter is bound inside ``_create_cait``), so every ``cait_*`` entry point is wrapped: timm builds the
model without weights, then :func:`kit.models.weights.load_weights` loads the file. The wrapped entry
points call timm's own, unchanged.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Callable

import timm.models.cait as timm_cait
import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import resample_abs_pos_embed
from timm.models import register_model
from timm.models._pretrained import DefaultCfg
from timm.models._registry import generate_default_cfgs
from timm.models.cait import Cait, _create_cait

from kit.core.errors import UserError
from kit.models import weights

__all__ = ["Cait", "DEIT_NAMES", "timm_name", "checkpoint_filter_fn", "cait_workshop_32"]

# ---------------------------------------------------------------------------------------------------
# DeiT names
# ---------------------------------------------------------------------------------------------------

#: DeiT's registry names (facebookresearch/deit ``cait_models.py``) -> timm's. DeiT leaves the input size
#: out of the name for its 384/448 models.
DEIT_NAMES: dict[str, str] = {
    "cait_XXS24_224": "cait_xxs24_224",
    "cait_XXS24": "cait_xxs24_384",
    "cait_XXS36_224": "cait_xxs36_224",
    "cait_XXS36": "cait_xxs36_384",
    "cait_XS24": "cait_xs24_384",
    "cait_S24_224": "cait_s24_224",
    "cait_S24": "cait_s24_384",
    "cait_S36": "cait_s36_384",
    "cait_M36": "cait_m36_384",
    "cait_M48": "cait_m48_448",
}


def timm_name(name: str) -> str:
    """timm's name for a CaiT given by its DeiT name, DeiT checkpoint file name, or timm name.

    ``"cait_S24_224"`` and ``"S24_224.pth"`` (DeiT's release file) both give ``"cait_s24_224"``;
    a timm name is returned as it is.
    """
    if name in DEIT_NAMES:
        return DEIT_NAMES[name]
    stem = Path(name).name
    stem = stem[: -len(".pth")] if stem.endswith(".pth") else stem
    candidate = stem.lower() if stem.lower().startswith("cait_") else "cait_" + stem.lower()
    if candidate in timm_cait.default_cfgs or candidate in default_cfgs:
        return candidate
    known = ", ".join(sorted(DEIT_NAMES))
    raise UserError(f"unknown CaiT name {name!r}: expected a timm name (cait_s24_224 ...), a DeiT name ({known}) "
                    f"or a DeiT checkpoint file name (S24_224.pth ...)")


# ---------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's CaiT filter, plus ``pos_embed`` resampling when the checkpoint was trained at another size.

    CaiT's ``pos_embed`` covers the patch tokens only (the class token joins after the trunk), so it is
    resampled as a square grid with no prefix tokens.
    """
    state_dict = timm_cait.checkpoint_filter_fn(state_dict, model)
    pos = state_dict.get("pos_embed")
    target = getattr(model, "pos_embed", None)
    if pos is not None and target is not None and pos.shape != target.shape and pos.shape[-1] == target.shape[-1]:
        old = int(round(pos.shape[1] ** 0.5))
        if old * old == pos.shape[1]:
            state_dict["pos_embed"] = resample_abs_pos_embed(
                pos, new_size=list(model.patch_embed.grid_size), old_size=[old, old], num_prefix_tokens=0
            )
    return state_dict


# ---------------------------------------------------------------------------------------------------
# Offline entry points
# ---------------------------------------------------------------------------------------------------


def _offline(name: str, create: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """An entry point named ``name`` that builds with ``create`` (no weights) and loads a local checkpoint."""

    def entry(pretrained: bool = False, **kwargs) -> nn.Module:
        origin = (default_cfgs[name].default.origin_url or "") if name in default_cfgs else ""
        return weights.build_offline(
            name, pretrained, kwargs, lambda **kw: create(pretrained=False, **kw), origin, checkpoint_filter_fn
        )

    entry.__name__ = entry.__qualname__ = name
    entry.__module__ = __name__
    entry.__doc__ = f"{name}, built by timm; pretrained=True loads a local file only (see kit.models.cait)."
    return entry


def _offline_cfg(cfg: DefaultCfg) -> DefaultCfg:
    """A copy of timm's pretrained cfgs with the download sources moved to ``origin_url`` (for the message)."""
    cfgs = {
        tag: replace(c, url=None, hf_hub_id=None, origin_url=c.url or c.origin_url) for tag, c in cfg.cfgs.items()
    }
    return DefaultCfg(tags=deque(cfg.tags), cfgs=cfgs, is_pretrained=False)


def _cfg(**kwargs) -> dict:
    """Default config of the workshop CaiT: 32x32 input, 10 classes, no download source."""
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "fixed_input_size": True,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": "apache-2.0",
        **kwargs,
    }


#: Read by timm's ``register_model`` (it looks up ``default_cfgs`` in the entry point's module).
default_cfgs: dict[str, DefaultCfg] = {
    **{arch: _offline_cfg(cfg) for arch, cfg in timm_cait.default_cfgs.items()},
    **generate_default_cfgs({"cait_workshop_32": _cfg()}),
}


def _register_timm_cait_offline() -> None:
    """Re-register each of timm's ``cait_*`` entry points through :func:`_offline` (timm's build, unchanged)."""
    for arch in timm_cait.default_cfgs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Overwriting cait_... in registry": intended, see the module doc
            register_model(_offline(arch, getattr(timm_cait, arch)))


_register_timm_cait_offline()


# ---------------------------------------------------------------------------------------------------
# Workshop model
# ---------------------------------------------------------------------------------------------------


def _create_workshop(pretrained: bool = False, **kwargs) -> Cait:
    model_args = dict(
        img_size=32,
        patch_size=8,
        num_classes=10,
        embed_dim=96,
        depth=4,
        num_heads=4,
        mlp_ratio=4.0,
        init_values=0.1,
        depth_token_only=2,
    )
    return _create_cait("cait_workshop_32", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def cait_workshop_32(pretrained: bool = False, **kwargs) -> Cait:
    """CaiT for 32x32 inputs, sized to train on the digits set in about a minute on 2 CPU cores.

    Patch 8 gives 4x4 = 16 tokens (patch 4's 64 tokens train far slower to the same accuracy); 4
    talking-heads blocks of width 96 (4 heads of 24) and the usual 2 class-attention blocks. The width
    is the narrowest that kept the workshop's accuracy (``bench/bench_workshop.py`` compares them).
    LayerScale starts at 0.1, the CaiT authors' value for shallow nets (1e-5/1e-6 is for 24+ blocks);
    1.0 trains unstably at this depth (``bench/bench_cait_workshop.py``).
    """
    return _offline("cait_workshop_32", _create_workshop)(pretrained=pretrained, **kwargs)
