"""``torch.sdaa.amp``: ``autocast()`` and ``GradScaler()``, as the ModelZoo ports call them.

The half type is float16. Why: ``torch.sdaa.amp.autocast()`` is the twin of ``torch.cuda.amp.autocast()``,
whose default is float16, and the ports pair it with a GradScaler, which only float16 needs (its exponent
range is what underflows and overflows). Which half type Tecorigin's card computes in is not documented in
the sources we have; this is an assumption, and the README says so.

The scaler is written here rather than taken from torch because the seeds' torch 2.2 has neither a generic
``torch.amp.GradScaler`` nor CPU kernels for the scaler's fused checks; it follows torch's rules exactly
(scale the loss, unscale and look for inf/NaN, skip that step, multiply the scale by ``backoff_factor``,
grow it by ``growth_factor`` after ``growth_interval`` clean steps) with ordinary tensor operations.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

__all__ = ["autocast", "GradScaler"]


class autocast(torch.autocast):  # noqa: N801  (the name the ports import)
    """``torch.autocast("sdaa", dtype=torch.float16)``, usable as a context manager and as a decorator."""

    def __init__(self, enabled: bool = True, dtype: torch.dtype = torch.float16, cache_enabled: bool = True):
        super().__init__("sdaa", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler:
    """Loss scaling for float16 training on the card, with torch.cuda.amp.GradScaler's interface and rules."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        if not growth_factor > 1.0 or not 0.0 < backoff_factor < 1.0:
            raise ValueError("growth_factor must be > 1 and backoff_factor in (0, 1)")
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict = {}  # id(optimizer) -> {"unscaled": bool, "found_inf": bool}

    # -- the four calls of a training step ---------------------------------------------------------------
    def scale(self, outputs: Any) -> Any:
        """Multiply the loss (or a nest of tensors) by the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, torch.Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scale in place and note whether any is inf or NaN."""
        if not self._enabled:
            return
        state = self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False})
        if state["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        inv_scale = 1.0 / self._scale
        found_inf = False
        with torch.no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    if param.grad.dtype == torch.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    param.grad.mul_(inv_scale)
                    found_inf = found_inf or not bool(torch.isfinite(param.grad).all())
        state.update(unscaled=True, found_inf=found_inf)

    def step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Optional[Any]:
        """``optimizer.step()``, unless the gradients held an inf or NaN: then the step is skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        state = self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False})
        if not state["unscaled"]:
            self.unscale_(optimizer)
        if state["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: Optional[float] = None) -> None:
        """Back off after a skipped step; grow after ``growth_interval`` clean ones (torch's _amp_update_scale_)."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, torch.Tensor) else new_scale)
        elif any(s["found_inf"] for s in self._per_optimizer.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                grown = self._scale * self._growth_factor
                if math.isfinite(grown):
                    self._scale = grown
                self._growth_tracker = 0
        self._per_optimizer = {}

    # -- the rest of torch's interface ------------------------------------------------------------------
    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state: dict) -> None:
        if not self._enabled:
            return
        if not state:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        as_float = lambda v: float(v.item() if isinstance(v, torch.Tensor) else v)  # noqa: E731
        self._scale = as_float(state["scale"])
        self._growth_factor = as_float(state["growth_factor"])
        self._backoff_factor = as_float(state["backoff_factor"])
        self._growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(as_float(state["_growth_tracker"]))
