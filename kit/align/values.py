"""Numbers as a dump's ``index.json`` holds them: NaN and infinities as ``null``, and the non-finite count.

Apart from :mod:`kit.align.stats` (which computes statistics with torch) so that ``kit align compare``, which
only reads dumps, imports no torch.
"""

from __future__ import annotations

import math
from typing import Optional

__all__ = ["json_number", "read_number", "nonfinite_count"]


def json_number(value: float) -> Optional[float]:
    """``value``, or None where it is NaN or infinite (strict JSON has no such numbers)."""
    value = float(value)
    return value if math.isfinite(value) else None


def read_number(value: Optional[float]) -> float:
    """A statistic as read from JSON: ``null`` is NaN."""
    return math.nan if value is None else float(value)


def nonfinite_count(stats: dict) -> int:
    """How many NaN and infinite elements the tensor of ``stats`` held."""
    return int(stats.get("nan", 0)) + int(stats.get("inf", 0))
