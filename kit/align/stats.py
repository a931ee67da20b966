"""Summary statistics of one tensor: what every entry of an alignment dump carries, full tensor or not.

The statistics are computed in float64 on the device that holds the tensor, and only the handful of
numbers travel to the host: a sum over millions of fp32 or bf16 values needs more precision than the
values have, and copying every activation off the card would cost more than the step itself. Devices
without float64 (MPS; possibly others) compute on the CPU instead: the same numbers, more traffic.

``std`` is the population standard deviation (no Bessel correction), so a one-element tensor has 0,
not NaN. The statistics are taken over all elements: one NaN makes mean, std and norm NaN (min and max
too, on most devices), and the ``nan`` / ``inf`` counts say how many there were.

In JSON a non-finite value is written as ``null`` (strict JSON, which every reader accepts); reading
turns it back into NaN (:mod:`kit.align.values`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from kit.align.values import json_number

__all__ = ["STAT_NAMES", "dtype_name", "float64_works", "stats_vector", "stats_dict"]

#: The statistics, in the order of the vector :func:`stats_vector` returns.
STAT_NAMES = ("mean", "std", "min", "max", "norm", "nan", "inf")


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).replace("torch.", "")


def float64_works(device: torch.device) -> bool:
    """Whether ``device`` computes in float64 (MPS does not; an accelerator's plug-in may not)."""
    try:
        return bool(torch.ones(2, dtype=torch.float64, device=device).sum().item() == 2.0)
    except (RuntimeError, TypeError, NotImplementedError):
        return False


def stats_vector(tensor: torch.Tensor, on: torch.device) -> torch.Tensor:
    """The :data:`STAT_NAMES` of ``tensor`` as one float64 vector on ``on``.

    Few passes over the data, since the dump computes this for every module: min and max in the
    tensor's own type (exact), one float64 copy for the mean and the norm, and the variance from those
    two (E[x²] - mean², exact enough in float64 unless |mean| exceeds std by some 10⁷). NaN and Inf are
    counted only when the norm says there are some, which costs one host synchronisation per tensor.
    """
    x = tensor.detach().to(on)
    n = x.numel()
    if n == 0:
        return torch.tensor([math.nan] * 5 + [0.0, 0.0], dtype=torch.float64, device=on)
    low, high = torch.aminmax(x)
    x64 = x.to(torch.float64)
    mean, norm = x64.mean(), torch.linalg.vector_norm(x64)
    std = (norm * norm / n - mean * mean).clamp_min(0).sqrt()
    if bool(torch.isfinite(norm)):
        counts = torch.zeros(2, dtype=torch.float64, device=on)
    else:
        counts = torch.stack([torch.isnan(x).sum(), torch.isinf(x).sum()]).to(torch.float64)
    return torch.cat([torch.stack([mean, std, low.to(torch.float64), high.to(torch.float64), norm]), counts])


def stats_dict(tensor: torch.Tensor, values: list[float]) -> dict:
    """Shape, dtype and element count of ``tensor`` with its statistics ``values`` (from :func:`stats_vector`)."""
    stats: dict[str, Any] = {"shape": list(tensor.shape), "dtype": dtype_name(tensor.dtype), "numel": tensor.numel()}
    for name, value in zip(STAT_NAMES, values):
        stats[name] = int(value) if name in ("nan", "inf") else json_number(value)
    return stats
