"""Weights from a file, for every kit model: one reader, one strict loader, one offline rule.

Pretrained weights reach the kit as files that other tools wrote: DeiT's ``{"model": ..., "args": ...}``,
mmpretrain's ``{"state_dict": ..., "meta": ...}``, the kit's own training checkpoints, plain state
dicts, ``module.`` / ``_orig_mod.`` prefixes from DDP and ``torch.compile``, or ``.safetensors``.
Unwrapping them is timm's job (``clean_state_dict`` strips the wrapper prefixes, the nesting keys are
timm's ``load_state_dict``'s); files are read weights-only, so a checkpoint cannot run code. This module
adds what timm leaves out:

* **strictness** (:func:`load_weights`). timm loads a checkpoint non-strictly as soon as the class count
  differs, and only logs the keys that did not fit, so the checkpoint of another model half-loads
  silently. Here everything but the classifier must fit, and a mismatch is a :class:`UserError` that
  names a few of the keys.
* **the offline rule** (:func:`build_offline`). Every kit entry point (HiViT's and the re-registered CaiT
  ones) builds the model without weights and then loads a local file or in-memory state dict; with
  ``pretrained=True`` and neither, it raises :class:`PretrainedFileError` instead of going to the hub.
  Workshops run offline, and a download that retries for a minute is worse than a sentence.

Each family maps foreign names onto its own in a module-level ``checkpoint_filter_fn`` (timm's
convention), which :func:`load_weights` finds by the model's module.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn as nn
from timm.models import clean_state_dict
from timm.models._pretrained import PretrainedCfg

from kit.core.errors import UserError

__all__ = [
    "PretrainedFileError",
    "WeightsMismatch",
    "unwrap_state_dict",
    "read_state_dict",
    "load_weights",
    "pretrained_source",
    "build_offline",
]

_logger = logging.getLogger(__name__)

#: Keys under which training scripts nest the weights: timm/Lightning/mmengine, DeiT and the kit's trainer.
NESTING_KEYS = ("state_dict", "model")


class WeightsMismatch(UserError, RuntimeError):
    """A checkpoint that does not fit the model. A RuntimeError too, as torch's ``load_state_dict`` raises."""


class PretrainedFileError(UserError, RuntimeError):
    """``pretrained=True`` without a local checkpoint: the kit downloads nothing. A UserError, so the CLI
    prints the message and exits 2; a RuntimeError, as timm raises for missing weights."""


@contextlib.contextmanager
def _deit_args_allowed():
    """Let weights-only unpickling accept DeiT's pickled ``args`` Namespace, where torch can (>= 2.5)."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    with safe_globals([argparse.Namespace]) if safe_globals is not None else contextlib.nullcontext():
        yield


def _check_tensors(state_dict: Any, source: str) -> dict[str, torch.Tensor]:
    if not isinstance(state_dict, Mapping):
        raise UserError(f"{source}: holds a {type(state_dict).__name__}, not a state dict")
    if not state_dict or any(not isinstance(v, torch.Tensor) for v in state_dict.values()):
        shown = ", ".join(repr(k) for k in list(state_dict)[:6])
        raise UserError(
            f"{source}: found no state dict (top-level keys: {shown or 'none'}); expected a plain "
            f"state dict or one nested under {' or '.join(repr(k) for k in NESTING_KEYS)}"
        )
    return dict(state_dict)


def unwrap_state_dict(obj: Any, source: str = "state_dict") -> dict[str, torch.Tensor]:
    """The weights in a loaded checkpoint: nested under ``state_dict`` or ``model`` or not at all, with
    timm's ``clean_state_dict`` removing the DDP / torch.compile prefixes. The model's own weights are
    taken, never an EMA copy stored beside them (DeiT's ``model_ema``). ``source`` names it in errors."""
    if isinstance(obj, Mapping):
        nested = next((obj[k] for k in NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
        obj = clean_state_dict(dict(nested if nested is not None else obj))
    return _check_tensors(obj, source)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in a checkpoint file, on the CPU, read weights-only (see :func:`unwrap_state_dict`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        with _deit_args_allowed():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises many types for a bad file; all mean the same)
        from kit.core.ckptcheck import unreadable

        raise UserError(unreadable(path, e)) from e
    return unwrap_state_dict(obj, str(path))


def _few(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" ... (+{len(keys) - n} more)" if len(keys) > n else "")


def _classifier_keys(model: nn.Module) -> set[str]:
    """State-dict names of the classification head (per timm's pretrained cfg ``classifier`` entry)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") or "head"
    names = (names,) if isinstance(names, str) else tuple(names)
    return {f"{n}.{p}" for n in names for p in ("weight", "bias")}


def load_weights(
    model: nn.Module,
    checkpoint: str | Path | Mapping[str, torch.Tensor],
    strict: bool = True,
    filter_fn: Optional[Callable] = None,
) -> list[str]:
    """Load weights from a file (or an in-memory state dict) into ``model``; return the keys left as built.

    Strict except for the classifier: a head of another size (fine-tuning to new classes) or no head
    in the checkpoint (a backbone) keeps the model's own freshly initialised head. Any other missing,
    unexpected or mis-shaped key is a :class:`WeightsMismatch` naming a few of them, so a checkpoint of another
    model never half-loads. ``filter_fn(state_dict, model)`` is the family's ``checkpoint_filter_fn`` (timm's
    ``pretrained_filter_fn``), passed in by the family: this loader knows no family.
    """
    if isinstance(checkpoint, Mapping):
        source, state_dict = "state_dict", unwrap_state_dict(checkpoint)
    else:
        source, state_dict = str(checkpoint), read_state_dict(checkpoint)
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
        parts = [
            f"{len(missing)} missing keys ({_few(missing)})" if missing else "",
            f"{len(unexpected)} unexpected keys ({_few(unexpected)})" if unexpected else "",
            f"{len(mismatched)} shapes differ, checkpoint vs model ({_few(mismatched, 3)})" if mismatched else "",
        ]
        raise WeightsMismatch(
            f"{source}: does not fit {arch}: "
            + "; ".join(p for p in parts if p)
            + ". Is it a checkpoint of another model or size?"
        )
    model.load_state_dict(state_dict, strict=False)
    if kept:
        _logger.info(
            "%s: kept the model's own %s (num_classes differs or the checkpoint has no head)",
            source,
            ", ".join(sorted(kept)),
        )
    return sorted(kept)


def pretrained_source(name: str, pretrained: bool, kwargs: Mapping, origin: str = "") -> Any:
    """The local file or in-memory state dict that ``pretrained=True`` asks for (None when not pretrained).

    Looked up where timm users put it: ``pretrained_cfg_overlay=dict(file=...)`` or ``dict(state_dict=...)``,
    or the same keys of ``pretrained_cfg``. ``origin`` (where the original weights were published) goes
    into the message, so the user knows what file to fetch.
    """
    if not pretrained:
        return None
    for cfg in (kwargs.get("pretrained_cfg_overlay"), kwargs.get("pretrained_cfg")):
        if isinstance(cfg, PretrainedCfg):
            cfg = cfg.to_dict()
        if isinstance(cfg, Mapping):
            if cfg.get("state_dict") is not None:
                return cfg["state_dict"]
            if cfg.get("file"):
                return cfg["file"]
    where = f" (the original weights: {origin})" if origin else ""
    raise PretrainedFileError(
        f"{name}: pretrained=True needs a local checkpoint file{where}; the kit never downloads. Use "
        f"timm.create_model({name!r}, pretrained=True, pretrained_cfg_overlay=dict(file='PATH.pth'))"
    )


def build_offline(
    name: str,
    pretrained: bool,
    kwargs: dict,
    build: Callable[..., nn.Module],
    origin: str = "",
    filter_fn: Optional[Callable] = None,
) -> nn.Module:
    """``build(**kwargs)`` without weights, then the local weights ``pretrained=True`` names (see above),
    through the family's ``filter_fn``."""
    source = pretrained_source(name, pretrained, kwargs, origin)
    model = build(**kwargs)
    if source is not None:
        load_weights(model, source, filter_fn=filter_fn)
    return model
