"""Attention read off the real modules: the maps, CaiT's talking heads, LayerScale and the residual branches.

* **attention maps** are captured by setting ``fused_attn = False`` on every ``attn`` module for the one
  forward (so the explicit path runs) and hooking ``attn.attn_drop``, whose input is the weights applied to
  the values; ``fused_attn`` is restored afterwards, even on error.
* **talking heads** (CaiT's trunk): ``attn.proj_l`` mixes the heads' logits before the softmax and
  ``attn.proj_w`` the weights after it; both are H x H matrices, reported with their distance from the
  identity (identity = plain multi-head attention).
* **LayerScale** (CaiT): each residual branch is multiplied by a learned per-channel ``gamma`` before it
  is added to the stream; reported as |gamma| and as the branch's size relative to the stream it joins
  (this ratio is also given for blocks without LayerScale, e.g. HiViT's).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

from kit.anatomy.forward import evaluating, example_input, keep_first, removing_hooks
from kit.anatomy.layout import Stage, stages

__all__ = ["explicit_attention", "attention_maps", "capture_attention", "talking_heads", "layerscale"]


def _attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(block name, attn module)`` for every ``attn`` that routes its weights through ``attn_drop``."""
    return [
        (name.rsplit(".", 1)[0] if "." in name else "", m)
        for name, m in model.named_modules()
        if name.split(".")[-1] == "attn" and isinstance(getattr(m, "attn_drop", None), nn.Module)
    ]


@contextmanager
def explicit_attention(model: nn.Module) -> Iterator[list[tuple[str, nn.Module]]]:
    """Within the block, every ``attn`` with a ``fused_attn`` flag takes its explicit path (the one that
    materialises the weights); the flags are put back as they were afterwards, even on error."""
    mods = _attention_modules(model)
    saved = [(m, m.fused_attn) for _, m in mods if hasattr(m, "fused_attn")]
    try:
        for m, _ in saved:
            m.fused_attn = False
        yield mods
    finally:
        for m, flag in saved:
            m.fused_attn = flag


def attention_maps(
    model: nn.Module, x: torch.Tensor | None = None, blocks: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """``{block name: weights (B, heads, Nq, Nk)}`` for every attention block (or those named in ``blocks``),
    from one eval forward.

    These are the weights the block applies to the values: a softmax over keys (rows sum to 1) for plain
    and class attention (CaiT's class attention has Nq = 1: the class token, over the class token and the
    patches); for talking-heads attention they are the weights *after* ``proj_w`` has mixed the heads, so
    rows need not sum to 1 and entries can be negative.
    """
    return capture_attention(model, x, blocks, lambda args, output: args[0])


def capture_attention(model: nn.Module, x: torch.Tensor | None, blocks: Sequence[str] | None, pick) -> dict:
    """``{block name: pick(args, output)}`` of every attention block's ``attn_drop`` (or those in ``blocks``),
    from one eval forward on the explicit attention path."""
    x = example_input(model) if x is None else x
    found: dict[str, Any] = {}
    with evaluating(model), explicit_attention(model) as mods, torch.no_grad():
        wanted = [(name, m) for name, m in mods if blocks is None or name in blocks]
        if blocks is not None and len(wanted) < len(set(blocks)):
            known = ", ".join(name for name, _ in mods)
            raise ValueError(f"no attention block named {sorted(set(blocks) - {n for n, _ in wanted})}; known: {known}")
        with removing_hooks([m.attn_drop.register_forward_hook(keep_first(found, name, pick)) for name, m in wanted]):
            model(x)
    return found


def _distance_from_identity(w: torch.Tensor) -> float:
    """||W - I||_F / ||I||_F: 0 for plain multi-head attention, 1 for W = 0."""
    eye = torch.eye(w.shape[0], dtype=w.dtype, device=w.device)
    return float((w - eye).norm() / eye.norm())


def _off_diagonal_share(w: torch.Tensor) -> float:
    """Share of W's (squared) Frobenius norm off the diagonal: how much heads are mixed."""
    total = float(w.pow(2).sum())
    return float((w - torch.diag(torch.diagonal(w))).pow(2).sum()) / total if total > 0 else 0.0


def talking_heads(model: nn.Module) -> list[dict]:
    """For every talking-heads attention: its H x H mixing matrices and how far they are from identity.

    ``proj_l`` mixes the heads' logits before the softmax, ``proj_w`` the attention weights after it
    (each a Linear over the head axis, with bias). Rows: ``{"block", "proj_l", "proj_w"}`` with the matrices
    as nested lists, and per matrix ``*_dist_identity`` (||W - I|| / ||I||) and ``*_offdiag`` (off-diagonal
    share of ||W||^2).
    """
    rows = []
    for name, attn in _attention_modules(model):
        if not (hasattr(attn, "proj_l") and hasattr(attn, "proj_w")):
            continue
        row: dict[str, Any] = dict(block=name)
        for key in ("proj_l", "proj_w"):
            w = getattr(attn, key).weight.detach().float().cpu()
            row[key] = w.tolist()
            row[f"{key}_dist_identity"] = _distance_from_identity(w)
            row[f"{key}_offdiag"] = _off_diagonal_share(w)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------
# LayerScale and residual branches
# ---------------------------------------------------------------------------------------------------


def _residual_blocks(model: nn.Module) -> list[Stage]:
    return [s for s in stages(model) if s.module is not None and hasattr(s.module, "mlp")]


def _token_ratio(branch: torch.Tensor, stream: torch.Tensor) -> float:
    """Mean over tokens of ||branch_t|| / ||stream_t|| (channels last)."""
    return float((branch.norm(dim=-1) / stream.norm(dim=-1).clamp_min(1e-12)).mean())


def layerscale(model: nn.Module, x: torch.Tensor | None = None) -> list[dict]:
    """Per residual block: LayerScale's |gamma| (where there is one) and each branch's size relative to
    the stream it is added to, from one eval forward.

    Rows ``{"block", "kind", "gamma_1_mean", "gamma_1_max", "gamma_2_mean", "gamma_2_max", "attn_ratio",
    "mlp_ratio"}``; a ratio is mean_t ||gamma * branch_t|| / ||stream_t|| with the stream taken just before
    that branch is added (gamma = 1 without LayerScale; ``None`` where a block has no such branch).
    Derived from hooks on ``attn``, ``mlp`` and the block output, so it also covers CaiT's class-attention
    blocks, which update the class token only.
    """
    x = example_input(model) if x is None else x
    blocks = _residual_blocks(model)
    seen: dict[str, dict[str, torch.Tensor]] = {b.name: {} for b in blocks}
    handles = []
    for b in blocks:
        for part in ("attn", "mlp", None):
            module = b.module if part is None else getattr(b.module, part, None)
            if module is not None:
                handles.append(module.register_forward_hook(keep_first(seen[b.name], part or "out", lambda a, o: o)))
    with evaluating(model), removing_hooks(handles), torch.no_grad():
        model(x)

    rows = []
    for b in blocks:
        got, row = seen[b.name], dict(block=b.name, kind=b.kind)
        g = {k: getattr(b.module, k, None) for k in ("gamma_1", "gamma_2")}
        g = {k: v.detach() if isinstance(v, torch.Tensor) else None for k, v in g.items()}
        for k, gamma in g.items():
            row[f"{k}_mean"] = float(gamma.abs().mean()) if gamma is not None else None
            row[f"{k}_max"] = float(gamma.abs().max()) if gamma is not None else None
        if "out" not in got:
            continue
        branch_attn = got["attn"] * (g["gamma_1"] if g["gamma_1"] is not None else 1) if "attn" in got else None
        branch_mlp = got["mlp"] * (g["gamma_2"] if g["gamma_2"] is not None else 1)
        after_attn = got["out"] - branch_mlp  # the stream the MLP branch joins (eval: no drop-path)
        before = after_attn - branch_attn if branch_attn is not None else after_attn
        row["attn_ratio"] = _token_ratio(branch_attn, before) if branch_attn is not None else None
        row["mlp_ratio"] = _token_ratio(branch_mlp, after_attn)
        rows.append(row)
    return rows
