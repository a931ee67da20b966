"""What a model is made of, read off the real modules: parameters, FLOPs, shapes and attention, per stage.

This is what the model-anatomy notebook shows, and what ``kit anatomy MODEL`` prints. It works for both
families the kit teaches (and for most timm ViT-like models) because it only relies on module layout:

* a model is cut into **stages**: each top-level child module, with ``nn.ModuleList``/``nn.Sequential``
  children expanded one row per item (CaiT: ``patch_embed``, ``blocks.i``, ``blocks_token_only.j``,
  ``norm``, ``head``; HiViT: ``patch_embed``, the stem MLP blocks and merges and the main blocks of its
  flat ``blocks`` list, ``head``), plus one row for the parameters held by the model itself
  (CaiT: ``pos_embed+cls_token``; HiViT: ``pos_embed``). Every parameter is in exactly one row.
* a stage's **kind** comes from what it holds: a ``reduction`` layer is a merge, an ``attn`` of ``None``
  (or none at all, next to an ``mlp``) is an MLP-only block, an ``attn`` with ``proj_l``/``proj_w`` is
  talking-heads self-attention, one with separate ``q``/``k``/``v`` and no ``qkv`` is class attention.
* **FLOPs** come from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions; 1 MAC =
  2 FLOPs); a stage's share is the counter's growth between forward hooks at its entry and exit. The fused
  CPU attention op ``aten._scaled_dot_product_flash_attention_for_cpu`` (used by CaiT's class attention and
  HiViT's attention) is not in torch's formula table, so a formula for it is registered here (the same as
  torch's for the CUDA SDPA ops): the model runs exactly as it would, nothing is switched off.
* **attention maps** are captured by setting ``fused_attn = False`` on every ``attn`` module for the one
  forward (so the explicit path runs) and hooking ``attn.attn_drop``, whose input is the weights applied to
  the values; ``fused_attn`` is restored afterwards, even on error.
* **talking heads** (CaiT's trunk): ``attn.proj_l`` mixes the heads' logits before the softmax and
  ``attn.proj_w`` the weights after it; both are H x H matrices, reported with their distance from the
  identity (identity = plain multi-head attention).
* **LayerScale** (CaiT): each residual branch is multiplied by a learned per-channel ``gamma`` before it
  is added to the stream; reported as |gamma| and as the branch's size relative to the stream it joins
  (this ratio is also given for blocks without LayerScale, e.g. HiViT's).

The pictures of all this are drawn by :mod:`kit.anatomy.plots`; the time a HiViT saves by dropping masked
units is measured by :func:`kit.anatomy.speed.masked_forward_times`.
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from kit import models
from kit.core import seeding
from kit.core.errors import UserError

__all__ = [
    "Stage",
    "StageRow",
    "Anatomy",
    "stages",
    "param_table",
    "example_input",
    "evaluating",
    "count_flops",
    "stage_shapes",
    "explicit_attention",
    "attention_maps",
    "talking_heads",
    "layerscale",
    "anatomy",
    "format_report",
    "add_arguments",
    "run",
]

# ---------------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------
# FLOPs and shapes
# ---------------------------------------------------------------------------------------------------


def _sdpa_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """q k^T and (weights) v: 2 * B * H * Lq * Lk * (E + Ev), as torch counts its CUDA SDPA ops."""
    b, h, lq, e = query_shape
    lk, ev = key_shape[-2], value_shape[-1]
    return 2 * b * h * lq * lk * e + 2 * b * h * lq * lk * ev


def _custom_flop_formulas() -> dict:
    """Formulas for ops torch's table lacks: the fused CPU SDPA kernel (where this torch has the op)."""
    try:  # torch >= 2.3; older torch runs CPU SDPA through ops its table already has
        op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    except (AttributeError, RuntimeError):
        return {}
    if op in flop_registry:
        return {}
    return {op: _sdpa_flops}


@contextmanager
def _hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout, no drop-path) for the block; the model's own mode is put back after, even on
    error, so that inspecting a model in the middle of training does not change how it trains."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _keep_first(store: dict, key: str, pick) -> Any:
    """A forward hook that stores ``pick(args, output)`` (detached) under ``key`` on the first call only.
    It returns None, so the module's output is left alone."""

    def hook(module, args, output) -> None:
        if key not in store:
            value = pick(args, output)
            store[key] = value.detach() if isinstance(value, torch.Tensor) else value

    return hook


def example_input(model: nn.Module, img_size: int | Sequence[int] | None = None, batch: int = 1) -> torch.Tensor:
    """A random image batch of the size the model was built for (or ``img_size``), on its device.

    The built size is the patch embedding's ``img_size`` (timm's PatchEmbed), else the pretrained cfg's.
    The batch is drawn from its own generator seeded with 0, so every call gives the same images and the
    global random state is left alone.
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    chans, *hw = cfg.get("input_size", (3, 224, 224))
    if img_size is not None:
        hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    elif getattr(getattr(model, "patch_embed", None), "img_size", None) is not None:
        hw = tuple(model.patch_embed.img_size)
    size = (getattr(model, "in_chans", chans), *hw)
    param = next(model.parameters(), None)
    device = param.device if param is not None else "cpu"
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, *size, generator=generator).to(device)


def count_flops(model: nn.Module, x: torch.Tensor | None = None) -> dict:
    """FLOPs of one forward per image: ``{"total": n, "stages": {name: n}, "by_op": {op: n}, "outside": n}``.

    ``outside`` counts what runs outside every stage (usually 0: pooling and concatenations have no
    FLOPs in torch's table). The forward runs in eval mode with autograd on: the counter's module tracker
    hooks autograd, and fails under ``torch.no_grad`` on views of parameters (CaiT's expanded class token).
    """
    x = example_input(model) if x is None else x
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flop_formulas())
    per_stage: dict[str, int] = {}
    handles = []

    def watch(name: str, module: nn.Module) -> None:
        entry: list[int] = []

        def enter(m, args):
            entry.append(counter.get_total_flops())

        def leave(m, args, output):
            per_stage[name] = per_stage.get(name, 0) + counter.get_total_flops() - entry.pop()

        handles.extend([module.register_forward_pre_hook(enter), module.register_forward_hook(leave)])

    for s in stages(model):
        if s.module is not None:
            watch(s.name, s.module)
    with evaluating(model), _hooks(handles), counter:
        model(x)
    batch = x.shape[0]
    total = counter.get_total_flops()
    by_op = {str(op): n // batch for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return dict(
        total=total // batch,
        stages={k: v // batch for k, v in per_stage.items()},
        by_op=by_op,
        outside=(total - sum(per_stage.values())) // batch,
    )


def _shape(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (tuple, list)):
        return [_shape(v) for v in value if isinstance(v, (torch.Tensor, tuple, list))]
    return None


def stage_shapes(model: nn.Module, x: torch.Tensor | None = None) -> dict[str, dict]:
    """``{stage: {"inputs": [shape, ...], "output": shape}}`` from one forward (first call of each stage);
    the image itself is under ``"input"``. Only tensor arguments are listed (CaiT's class-attention blocks
    take the patch tokens and the class token)."""
    x = example_input(model) if x is None else x
    out: dict[str, dict] = {"input": dict(inputs=[], output=list(x.shape))}

    def record(name: str):
        def hook(m, args, output):
            if name not in out:  # first call only
                out[name] = dict(inputs=[_shape(t) for t in args if isinstance(t, torch.Tensor)], output=_shape(output))
        return hook

    handles = [s.module.register_forward_hook(record(s.name)) for s in stages(model) if s.module is not None]
    with evaluating(model), _hooks(handles), torch.no_grad():
        model(x)
    return out


# ---------------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------------


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
    return _capture_attention(model, x, blocks, lambda args, output: args[0])


def _capture_attention(model: nn.Module, x: torch.Tensor | None, blocks: Sequence[str] | None, pick) -> dict:
    x = example_input(model) if x is None else x
    found: dict[str, Any] = {}
    with evaluating(model), explicit_attention(model) as mods, torch.no_grad():
        wanted = [(name, m) for name, m in mods if blocks is None or name in blocks]
        if blocks is not None and len(wanted) < len(set(blocks)):
            known = ", ".join(name for name, _ in mods)
            raise ValueError(f"no attention block named {sorted(set(blocks) - {n for n, _ in wanted})}; known: {known}")
        with _hooks([m.attn_drop.register_forward_hook(_keep_first(found, name, pick)) for name, m in wanted]):
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
                handles.append(module.register_forward_hook(_keep_first(seen[b.name], part or "out", lambda a, o: o)))
    with evaluating(model), _hooks(handles), torch.no_grad():
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


# ---------------------------------------------------------------------------------------------------
# The whole report
# ---------------------------------------------------------------------------------------------------


@dataclass
class StageRow:
    name: str
    kind: str
    params: int
    share: float
    flops: int
    inputs: list
    output: Any
    holds: dict[str, list[int]] = field(default_factory=dict)  # parameter shapes of an embedding row


@dataclass
class Anatomy:
    """Everything ``kit anatomy`` prints; ``to_dict()`` is the ``--json`` document."""

    model: str
    input_size: list[int]
    num_classes: int
    total_params: int
    total_flops: int
    stages: list[StageRow]
    talking_heads: list[dict] = field(default_factory=list)
    layerscale: list[dict] = field(default_factory=list)
    attention: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def anatomy(model: nn.Module, x: torch.Tensor | None = None, name: str | None = None) -> Anatomy:
    """The full report for ``model`` on input ``x`` (default: one random image of the model's size)."""
    x = example_input(model) if x is None else x
    flops = count_flops(model, x)
    shapes = stage_shapes(model, x)
    total = sum(p.numel() for p in model.parameters())
    rows = [
        StageRow(s.name, s.kind, s.params, s.params / total, flops["stages"].get(s.name, 0),
                 shapes.get(s.name, {}).get("inputs", []), shapes.get(s.name, {}).get("output"),
                 {n: list(getattr(model, n).shape) for n in s.param_names})
        for s in stages(model)
    ]
    attention = _capture_attention(model, x, None, lambda args, output: list(args[0].shape[1:]))
    notes = ["FLOPs: torch.utils.flop_counter (matmul/conv; 1 MAC = 2 FLOPs), per image, forward only"]
    if any("_scaled_dot_product_flash_attention_for_cpu" in op for op in flops["by_op"]):
        notes.append("fused CPU attention (aten._scaled_dot_product_flash_attention_for_cpu) counted with a "
                     "registered formula; the model ran unchanged")
    if flops["outside"]:
        notes.append(f"{flops['outside']:,} FLOPs ran outside the listed stages")
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return Anatomy(
        model=name or cfg.get("architecture") or type(model).__name__,
        input_size=list(x.shape[1:]),
        num_classes=int(getattr(model, "num_classes", 0)),
        total_params=total,
        total_flops=flops["total"],
        stages=rows,
        talking_heads=talking_heads(model),
        layerscale=layerscale(model, x),
        attention=attention,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------


def _fmt_shape(shape: Any) -> str:
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "x".join(str(d) for d in shape)


def format_report(report: Anatomy) -> str:
    """The plain-text tables ``kit anatomy`` prints."""
    lines = [
        f"{report.model}: input {_fmt_shape(report.input_size)}, {report.num_classes} classes, "
        f"{report.total_params:,} parameters, {report.total_flops / 1e9:.3f} GFLOPs "
        f"({report.total_flops / 2e9:.3f} GMACs) per image",
        "",
    ]
    w = max(len(r.name) for r in report.stages)
    k = max(len(r.kind) for r in report.stages)
    lines.append(f"{'stage':<{w}}  {'kind':<{k}}  {'params':>11}  {'share':>6}  {'MFLOPs':>9}  in -> out")
    for r in report.stages:
        if r.holds:
            flow = "holds " + ", ".join(f"{n} {_fmt_shape(v)}" for n, v in r.holds.items())
        else:
            flow = ("; ".join(_fmt_shape(s) for s in r.inputs) or "-") + " -> " + _fmt_shape(r.output)
        lines.append(f"{r.name:<{w}}  {r.kind:<{k}}  {r.params:>11,}  {r.share:>6.1%}  {r.flops / 1e6:>9.2f}"
                     f"  {flow}")
    if report.talking_heads:
        lines += ["", "talking heads (||W - I|| / ||I||; off-diagonal share of ||W||^2):"]
        for t in report.talking_heads:
            lines.append(f"  {t['block']:<{w}}"
                         f"  proj_l {t['proj_l_dist_identity']:.2f} ({t['proj_l_offdiag']:.0%} off)"
                         f"  proj_w {t['proj_w_dist_identity']:.2f} ({t['proj_w_offdiag']:.0%} off)")
    if report.layerscale:
        lines += ["", "residual branches (||branch|| / ||stream||, per token) and LayerScale mean |gamma|:"]
        for r in report.layerscale:
            def num(v):
                return "-" if v is None else f"{v:.3g}"
            lines.append(f"  {r['block']:<{w}}  attn {num(r['attn_ratio']):>8}  mlp {num(r['mlp_ratio']):>8}"
                         f"  gamma_1 {num(r['gamma_1_mean']):>8}  gamma_2 {num(r['gamma_2_mean']):>8}")
    if report.attention:
        lines += ["", "attention maps captured (heads x queries x keys): "
                  + ", ".join(f"{k} {_fmt_shape(v)}" for k, v in list(report.attention.items())[:4])
                  + (" ..." if len(report.attention) > 4 else "")]
    lines += [""] + [f"note: {n}" for n in report.notes]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a kit model name, e.g. cait_workshop_32, hivit_workshop_32, cait_s24_224")
    parser.add_argument("--img-size", type=int, default=None, help="input size (default: the model's)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes (default: the model's)")
    parser.add_argument("--checkpoint", default=None,
                        help="load these weights first (any layout kit.models.weights reads)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random init and the random input")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    if args.img_size is not None and args.img_size <= 0:
        raise UserError(f"--img-size must be positive, got {args.img_size}")
    if args.num_classes is not None and args.num_classes < 0:
        raise UserError(f"--num-classes must be >= 0, got {args.num_classes}")
    seeding.seed_all(args.seed)
    model = models.create(args.model, img_size=args.img_size, num_classes=args.num_classes,
                          checkpoint=args.checkpoint).eval()
    report = anatomy(model, example_input(model, args.img_size))
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_report(report))
    return 0
