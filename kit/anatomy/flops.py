"""FLOPs and shapes per stage, from one forward of the real model.

* **FLOPs** come from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions; 1 MAC =
  2 FLOPs); a stage's share is the counter's growth between forward hooks at its entry and exit. The fused
  CPU attention op ``aten._scaled_dot_product_flash_attention_for_cpu`` (used by CaiT's class attention and
  HiViT's attention) is not in torch's formula table, so a formula for it is registered here (the same as
  torch's for the CUDA SDPA ops): the model runs exactly as it would, nothing is switched off.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from kit.anatomy.forward import evaluating, example_input, removing_hooks
from kit.anatomy.layout import stages

__all__ = ["count_flops", "stage_shapes"]


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
    with evaluating(model), removing_hooks(handles), counter:
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
    with evaluating(model), removing_hooks(handles), torch.no_grad():
        model(x)
    return out
