"""What a model is made of, in one report: parameters, FLOPs, shapes and attention per stage (``kit anatomy``).

This is what the model-anatomy notebook shows, and what ``kit anatomy MODEL`` prints. The readings come from
:mod:`kit.anatomy.layout` (the cut into stages), :mod:`kit.anatomy.flops` (FLOPs and shapes) and
:mod:`kit.anatomy.attention` (attention maps, talking heads, LayerScale); the pictures of all this are drawn
by :mod:`kit.anatomy.plots`; the time a HiViT saves by dropping masked units is measured by
:func:`kit.anatomy.speed.masked_forward_times`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

from kit.anatomy.attention import capture_attention, layerscale, talking_heads
from kit.anatomy.flops import count_flops, stage_shapes
from kit.anatomy.forward import example_input
from kit.anatomy.layout import stages

__all__ = ["StageRow", "Anatomy", "anatomy", "format_report"]


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
    attention = capture_attention(model, x, None, lambda args, output: list(args[0].shape[1:]))
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
