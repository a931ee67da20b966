"""A model cut into stages, read off its module layout: one row per stage, every parameter in exactly one row.

It works for both families the kit teaches (and for most timm ViT-like models) because it only relies on
module layout:

* a model is cut into **stages**: each top-level child module, with ``nn.ModuleList``/``nn.Sequential``
  children expanded one row per item (CaiT: ``patch_embed``, ``blocks.i``, ``blocks_token_only.j``,
  ``norm``, ``head``; HiViT: ``patch_embed``, the stem MLP blocks and merges and the main blocks of its
  flat ``blocks`` list, ``head``), plus one row for the parameters held by the model itself
  (CaiT: ``pos_embed+cls_token``; HiViT: ``pos_embed``). Every parameter is in exactly one row.
* a stage's **kind** comes from what it holds: a ``reduction`` layer is a merge, an ``attn`` of ``None``
  (or none at all, next to an ``mlp``) is an MLP-only block, an ``attn`` with ``proj_l``/``proj_w`` is
  talking-heads self-attention, one with separate ``q``/``k``/``v`` and no ``qkv`` is class attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

__all__ = ["Stage", "stages", "param_table"]


@dataclass
class Stage:
    """One row of the anatomy: a module (``module``) or the model's own parameters (``module is None``)."""

    name: str
    kind: str
    module: nn.Module | None
    params: int
    param_names: tuple[str, ...] = ()


def _kind(model: nn.Module, name: str, module: nn.Module) -> str:
    if hasattr(module, "reduction"):
        return "merge"
    if hasattr(module, "attn") or hasattr(module, "mlp"):
        attn = getattr(module, "attn", None)
        if attn is None:
            return "MLP block"
        if hasattr(attn, "proj_l") and hasattr(attn, "proj_w"):
            return "self-attention (talking heads)"
        if hasattr(attn, "q") and not hasattr(attn, "qkv"):
            return "class attention"
        return "self-attention"
    if name == "patch_embed":
        return "patch embedding"
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d)):
        return "norm"
    get_classifier = getattr(model, "get_classifier", None)
    if name == "head" or (get_classifier is not None and module is get_classifier()):
        return "classifier"
    return type(module).__name__


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def stages(model: nn.Module) -> list[Stage]:
    """The model cut into stages, in the order data meets them (see the module doc); parameter-free
    modules (dropouts, identities) are left out. The model's own parameters form one ``embedding`` row,
    placed after the patch embedding, or after the stem for a model with ``num_stem_modules`` (HiViT adds
    its position table at the entry of the main stage)."""
    rows: list[Stage] = []
    for name, child in model.named_children():
        items = child.named_children() if isinstance(child, (nn.ModuleList, nn.Sequential)) else [(None, child)]
        for sub, module in items:
            full = name if sub is None else f"{name}.{sub}"
            if _count(module) > 0:
                rows.append(Stage(full, _kind(model, full, module), module, _count(module)))
    own = sorted(model.named_parameters(recurse=False), key=lambda item: item[0] != "pos_embed")
    if own:
        names = tuple(n for n, _ in own)
        row = Stage("+".join(names), "embedding", None, sum(p.numel() for _, p in own), names)
        after = "patch_embed"
        stem = getattr(model, "num_stem_modules", None)
        if isinstance(stem, int) and stem > 0 and isinstance(getattr(model, "blocks", None), nn.ModuleList):
            after = f"blocks.{stem - 1}"
        at = next((i + 1 for i, r in enumerate(rows) if r.name == after), 0)
        rows.insert(at, row)
    return rows


def param_table(model: nn.Module) -> list[dict]:
    """Rows ``{"name", "kind", "params", "share"}`` (share of the model's total), one per stage."""
    total = sum(p.numel() for p in model.parameters())
    return [dict(name=s.name, kind=s.kind, params=s.params, share=s.params / total) for s in stages(model)]
