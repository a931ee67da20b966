"""Arithmetic on loss series that every rule shares: the moving average and the first sustained stretch.

Why a module of its own: the ModelZoo/strict rules (:mod:`kit.validate.compare`) and the noise verdict
(:mod:`kit.validate.noise`) both need them, and the noise verdict is one of the rules the comparison
runs; with these two here, imports point one way (compare -> noise -> series).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["first_sustained", "moving_average"]


def first_sustained(beyond: np.ndarray, min_length: int) -> Optional[int]:
    """Index of the first point from which ``beyond`` is true to the end, if that stretch has at least
    ``min_length`` points (a shorter one is the last steps' noise, not a divergence); else None."""
    beyond = np.asarray(beyond, dtype=bool)
    inside = np.flatnonzero(~beyond)
    start = int(inside[-1]) + 1 if inside.size else 0
    return start if beyond.size - start >= max(1, min_length) else None


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average of ``window`` points; the first points average what there is.

    The kit's one moving average: ``--smooth``, the plot, the noise verdict and
    :class:`kit.workshop.liveplot.LiveLossPlot`.
    """
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or not x.size:
        return x.copy()
    cumsum = np.concatenate([[0.0], np.cumsum(x)])
    end = np.arange(1, x.size + 1)
    start = np.maximum(end - window, 0)
    return (cumsum[end] - cumsum[start]) / (end - start)
