"""CaiT (Touvron et al., "Going deeper with Image Transformers", arXiv 2103.17239): timm's model, a
32x32 workshop size, DeiT names, and offline checkpoint loading.

The architecture is timm's ``timm.models.cait`` and is not rewritten here. This file adds:

* ``cait_workshop_32``: a small CaiT for 32x32 images (8x8 tokens of 4x4 pixels), registered in timm,
  so ``timm.create_model("cait_workshop_32")`` works after ``import kit``.
* :func:`timm_name`: the DeiT repository calls the same models ``cait_S24_224``, ``cait_M48`` ... and
  its checkpoint files ``S24_224.pth`` ...; this maps either to timm's name.
* Offline weights. ``timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=PATH))``
  loads a local checkpoint in any common layout (plain state dict, DeiT's ``{"model": ...}``,
  ``{"state_dict": ...}``, ``module.``/``_orig_mod.`` prefixes), strictly, and a checkpoint of another
  model is a :class:`~kit.errors.UserError` that lists a few missing/unexpected keys. ``pretrained=True``
  without a file is a UserError too: the kit never downloads.

Why the timm CaiT names are re-registered: timm's own load path already unwraps ``model`` and strips
``module.``, but (a) with no file it goes to the Hugging Face hub (about a minute of retries offline,
then an HF error), and (b) when ``num_classes`` differs from the checkpoint's it loads non-strictly and
only *logs* missing/unexpected keys, so a wrong checkpoint half-loads silently. Neither can be changed
through timm's public hooks (the load filter is bound inside ``_create_cait``), so every ``cait_*``
entry point is wrapped: timm builds the model without weights, then :func:`load_checkpoint` loads the
file. The wrapped entry points call timm's own, unchanged.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
import timm.models.cait as timm_cait
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import resample_abs_pos_embed
from timm.models import register_model
from timm.models._pretrained import DefaultCfg, PretrainedCfg
from timm.models._registry import generate_default_cfgs
from timm.models.cait import Cait, _create_cait

from kit.errors import UserError

__all__ = [
    "Cait",
    "DEIT_NAMES",
    "timm_name",
    "read_state_dict",
    "checkpoint_filter_fn",
    "load_checkpoint",
    "cait_workshop_32",
]

_logger = logging.getLogger(__name__)

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

#: Keys under which training scripts nest the weights: timm/Lightning/mmengine, DeiT and the kit's trainer.
_NESTING_KEYS = ("state_dict", "model")
#: Prefixes added by wrappers: DistributedDataParallel and torch.compile, in either order.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True`` (no arbitrary code), allowing DeiT's ``args`` Namespace."""
    import argparse

    safe_globals = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    if safe_globals is not None:
        with safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True)


def _strip_wrappers(key: str) -> str:
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint, whatever its layout, with wrapper prefixes removed.

    Accepts a plain state dict, ``{"model": sd, ...}`` (DeiT, the kit's trainer) or ``{"state_dict": sd,
    ...}`` (timm, Lightning, mmengine). ``source`` names the file in error messages.
    """
    if not isinstance(obj, Mapping):
        raise UserError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    for key in _NESTING_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors or not obj:
        shown = ", ".join(repr(k) for k in list(obj)[:6])
        raise UserError(f"{source}: found no state dict (top-level keys: {shown or 'none'}); expected a plain "
                        f"state dict or one nested under {' or '.join(repr(k) for k in _NESTING_KEYS)}")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        name = _strip_wrappers(key)
        if name in out:
            raise UserError(f"{source}: key {name!r} appears twice once wrapper prefixes are removed")
        out[name] = value
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file (see :func:`unwrap_state_dict` for the layouts), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        obj = _torch_load(path)
    except Exception as e:  # noqa: BLE001  (torch raises many types for a bad file; all mean the same)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"{path}: cannot be read as a PyTorch checkpoint ({type(e).__name__}: {first_line})") from e
    return unwrap_state_dict(obj, source=str(path))


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


def _few(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" ... (+{len(keys) - n} more)" if len(keys) > n else "")


def _classifier_keys(model: nn.Module) -> set[str]:
    """State-dict names of the classification head (per timm's pretrained cfg ``classifier`` entry)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") or "head"
    names = (names,) if isinstance(names, str) else tuple(names)
    return {f"{n}.{p}" for n in names for p in ("weight", "bias")}


def _default_filter(model: nn.Module) -> Callable | None:
    """The checkpoint filter of the model's family: timm's convention of a module-level function."""
    if isinstance(model, Cait):
        return checkpoint_filter_fn
    return getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)


def load_checkpoint(
    model: nn.Module,
    checkpoint: str | Path | Mapping[str, torch.Tensor],
    strict: bool = True,
    filter_fn: Callable | None = None,
) -> list[str]:
    """Load weights from a file (or an in-memory state dict) into ``model``; return the keys left as built.

    Strict except for the classifier: a head of another size (fine-tuning to new classes) or no head
    in the checkpoint (a backbone) keeps the model's own freshly initialised head. Any other missing,
    unexpected or mis-shaped key is a :class:`UserError` naming a few of them, so a checkpoint of another
    model never half-loads. ``filter_fn(state_dict, model)`` defaults to the family's
    ``checkpoint_filter_fn`` (CaiT: :func:`checkpoint_filter_fn`; HiViT: the one in ``kit.models.hivit``).
    """
    if isinstance(checkpoint, Mapping):
        source, state_dict = "state_dict", unwrap_state_dict(checkpoint, "state_dict")
    else:
        source, state_dict = str(checkpoint), read_state_dict(checkpoint)
    filter_fn = filter_fn or _default_filter(model)
    if filter_fn is not None:
        state_dict = filter_fn(state_dict, model)

    expected = model.state_dict()
    head = _classifier_keys(model)
    kept = [k for k in head if k in expected and (k not in state_dict or state_dict[k].shape != expected[k].shape)]
    state_dict = {k: v for k, v in state_dict.items() if k not in kept and not (k in head and k not in expected)}
    missing = [k for k in expected if k not in state_dict and k not in kept]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    if mismatched or (strict and (missing or unexpected)):
        arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
        parts = [f"{len(missing)} missing keys ({_few(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected keys ({_few(unexpected)})" if unexpected else "",
                 f"{len(mismatched)} shapes differ, checkpoint vs model ({_few(mismatched, 3)})" if mismatched else ""]
        raise UserError(f"{source}: does not fit {arch}: " + "; ".join(p for p in parts if p)
                        + ". Is it a checkpoint of another model or size?")
    model.load_state_dict(state_dict, strict=False)
    if kept:
        _logger.info("%s: kept the model's own %s (num_classes differs or the checkpoint has no head)",
                     source, ", ".join(sorted(kept)))
    return sorted(kept)


# ---------------------------------------------------------------------------------------------------
# Offline entry points
# ---------------------------------------------------------------------------------------------------


def _weights_source(name: str, pretrained: bool, kwargs: dict) -> Any:
    """The local file or in-memory state dict that ``pretrained=True`` asks for; a UserError if none."""
    if not pretrained:
        return None
    origin = ""
    for cfg in (kwargs.get("pretrained_cfg_overlay"), kwargs.get("pretrained_cfg")):
        if isinstance(cfg, PretrainedCfg):
            cfg = cfg.to_dict()
        if isinstance(cfg, Mapping):
            if cfg.get("state_dict") is not None:
                return cfg["state_dict"]
            if cfg.get("file"):
                return cfg["file"]
    if name in default_cfgs:
        origin = default_cfgs[name].default.origin_url or ""
    where = f" (the original weights: {origin})" if origin else ""
    raise UserError(f"{name}: pretrained=True needs a local checkpoint file{where}; the kit never downloads. "
                    f"Use timm.create_model({name!r}, pretrained=True, pretrained_cfg_overlay=dict(file='PATH.pth'))")


def _offline(name: str, create: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """An entry point named ``name`` that builds with ``create`` (no weights) and loads a local checkpoint."""

    def entry(pretrained: bool = False, **kwargs) -> nn.Module:
        source = _weights_source(name, pretrained, kwargs)
        model = create(pretrained=False, **kwargs)
        if source is not None:
            load_checkpoint(model, source)
        return model

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

    Patch 8 gives 4x4 = 16 tokens (patch 4's 64 tokens trained at under half the speed to the same
    accuracy); 4 talking-heads blocks of width 96 (4 heads of 24) and the usual 2 class-attention
    blocks, 0.69 M parameters. bench/bench_workshop.py on a quiet 2-core CPU, 25 epochs at batch 32:
    width 96 reached 96.9 % val top-1 in 76 s, width 128 (1.21 M) 96.9 % in 98 s, so the narrower model is the
    workshop's (the recipe now trains it at batch 64 from cached images: 97.5 % in 56 s). LayerScale starts at 0.1, the CaiT authors' value for shallow nets (1e-5/1e-6 is for 24+
    blocks); 1.0 trained unstably here (bench/bench_cait_workshop.py: 12 epochs reach 96 % val top-1
    with init 0.1, 33 % with 1.0).
    """
    return _offline("cait_workshop_32", _create_workshop)(pretrained=pretrained, **kwargs)
