"""Recording one training step: forward hooks on every module, gradient hooks on every parameter.

Hooks rather than a modified model: the model under test is exactly the one the trainer builds, with
its own code paths (fused attention or not, the device's kernels), and nothing of it is patched.

What is recorded, in execution order:

* ``forward``: the output of every module of ``model.named_modules()`` (the root as ``""``), when the
  module *finishes*. A child finishes before its parent, so the first divergent entry is the innermost
  module where the numbers changed. A module that runs more than once in a forward pass (HiViT has one
  ``drop_path`` per block for both residual branches) is recorded once per call, as ``name``,
  ``name[1]``, ``name[2]`` ... For tuple, list or dict outputs the first floating-point tensor is
  recorded (the kit's models return plain tensors); integer outputs are not recorded.
* ``grad``: every parameter's gradient once autograd has accumulated it (a post-accumulate-grad hook),
  so in the order the backward pass produced them: the head first, the stem last. A parameter that
  receives no gradient is listed as such, not recorded.

The forward hooks are removed before the backward pass, so a module re-run there (activation
checkpointing) is not recorded twice.

Statistics (:mod:`kit.align.stats`) stay on the device until :meth:`Recorder.finish` moves them all
to the host in one transfer; full tensors up to ``full_tensors_max`` elements are copied to the host
at once, so a later in-place operation cannot change what was recorded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch
import torch.nn as nn

from kit.align.stats import stats_dict, stats_vector

__all__ = ["disable_dropout", "first_float_tensor", "Entry", "Recorder"]


def disable_dropout(model: nn.Module) -> int:
    """Set every dropout probability and drop-path rate in ``model`` to 0; return how many were on.

    Setting the probabilities rather than putting those modules in eval mode, because timm's fused
    attention passes ``self.attn_drop.p`` to ``scaled_dot_product_attention`` whenever the *attention*
    module is training: eval mode on the Dropout alone would not stop that dropout.
    """
    changed = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p:
            module.p, changed = 0.0, changed + 1
        elif isinstance(getattr(module, "drop_prob", None), float) and module.drop_prob:  # timm DropPath, DropBlock
            module.drop_prob, changed = 0.0, changed + 1
    return changed


def first_float_tensor(output: Any) -> Optional[torch.Tensor]:
    """The tensor to record for a module's output: itself, or the first floating-point one inside it."""
    if isinstance(output, torch.Tensor):
        return output if output.is_floating_point() else None
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (list, tuple)) else ()
    for item in items:
        found = first_float_tensor(item)
        if found is not None:
            return found
    return None


@dataclass
class Entry:
    """One recorded tensor: its kind (input, forward, loss, grad), name, statistics and maybe a full copy."""

    kind: str
    name: str
    meta_of: torch.Tensor  # a zero-size view, for shape and dtype only
    stats: torch.Tensor  # float64 on the statistics device until Recorder.finish
    tensor: Optional[torch.Tensor]  # the full tensor on the CPU, when small enough

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


class Recorder:
    """Collects :class:`Entry` objects; ``stats_device`` computes the statistics, ``grad_scale`` undoes a loss scale.

    A module often returns the very tensor another module just returned (an Identity or a dropout with
    p = 0 returns its input, a Sequential or an Mlp its last child's output); the statistics of the last
    :attr:`RECENT` recorded tensors are reused when the same tensor object, unmodified, comes again.
    """

    RECENT = 4

    def __init__(self, stats_device: torch.device, full_tensors_max: int, grad_scale: float = 1.0):
        self.stats_device, self.full_tensors_max, self.grad_scale = stats_device, full_tensors_max, grad_scale
        self.entries: list[Entry] = []
        self.calls: dict[str, int] = {}
        self.no_grad: list[str] = []
        self.recent: list[tuple[torch.Tensor, int, Entry]] = []  # the last tensors recorded, to reuse their statistics

    def add(self, kind: str, name: str, tensor: torch.Tensor, scale: float = 1.0) -> None:
        for seen, version, entry in self.recent:
            if seen is tensor and version == tensor._version:  # e.g. an Identity, or a parent returning its child's
                full = None if entry.tensor is None else entry.tensor.clone()
                self.entries.append(Entry(kind, name, entry.meta_of, entry.stats, full))
                return
        source, tensor = tensor, tensor.detach()
        if scale != 1.0:
            tensor = tensor * scale
        full = tensor.to("cpu", copy=True).contiguous() if tensor.numel() <= self.full_tensors_max else None
        shape_only = tensor.new_empty(tuple(tensor.shape), device="meta")
        self.entries.append(Entry(kind, name, shape_only, stats_vector(tensor, self.stats_device), full))
        self.recent = [(source, source._version, self.entries[-1])] + self.recent[: self.RECENT - 1]

    def _on_forward(self, name: str, module: nn.Module, args: Any, output: Any) -> None:
        tensor = first_float_tensor(output)
        if tensor is None:
            return
        call = self.calls.get(name, 0)
        self.calls[name] = call + 1
        self.add("forward", name if call == 0 else f"{name}[{call}]", tensor)

    @contextlib.contextmanager
    def forward_hooks(self, model: nn.Module) -> Iterator[None]:
        """Record every module's output while the block runs."""
        handles = [m.register_forward_hook(lambda mod, a, out, n=name: self._on_forward(n, mod, a, out))
                   for name, m in model.named_modules()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextlib.contextmanager
    def gradient_hooks(self, model: nn.Module) -> Iterator[None]:
        """Record every parameter's gradient as the backward pass accumulates it, in that order."""
        params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        handles = [p.register_post_accumulate_grad_hook(lambda p, n=name: self.add("grad", n, p.grad, self.grad_scale))
                   for name, p in params]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
        recorded = {e.name for e in self.entries if e.kind == "grad"}
        self.no_grad = [name for name, _ in params if name not in recorded]

    def finish(self) -> tuple[list[dict], dict[str, torch.Tensor]]:
        """The entries for the index (statistics moved to the host in one transfer) and the full tensors by key."""
        values = torch.stack([e.stats for e in self.entries]).cpu().tolist() if self.entries else []
        index = [{"key": e.key, "kind": e.kind, "name": e.name, "saved": e.tensor is not None,
                  "stats": stats_dict(e.meta_of, v)} for e, v in zip(self.entries, values)]
        return index, {e.key: e.tensor for e in self.entries if e.tensor is not None}
