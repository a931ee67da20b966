"""The figure of a comparison: relative error per entry along the network, the first divergent ones marked.

Two panels share the story of one step: the forward pass (input, every module's output in the order
the modules finished, the loss) and the backward pass (every gradient in the order it was produced).
The y axis is ``max_rel`` on a log scale with the tolerance drawn as a line; exact agreement (0) is
drawn at the bottom of the axis. Built on :class:`matplotlib.figure.Figure` without pyplot, so the
command line needs no display and a notebook shows the returned figure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from kit.align.compare import FORWARD_KINDS, Report, Row
from kit.align.render import display_name
from kit.core.atomic import atomic_savefig

__all__ = ["plot_errors"]

FLOOR = 1e-12


def _panel(ax, rows: list[Row], first: Optional[Row], title: str) -> None:
    xs = list(range(len(rows)))
    ys = [max(r.max_rel, FLOOR) if math.isfinite(r.max_rel) else math.nan for r in rows]
    ax.plot(xs, ys, ".-", lw=0.8, ms=3, label="max_rel")
    ax.step(xs, [r.tolerance.max_rel for r in rows], where="mid", color="tab:green", lw=1, label="tolerance")
    bad = [i for i, r in enumerate(rows) if not r.within]
    ax.plot(bad, [ys[i] if math.isfinite(ys[i]) else 1.0 for i in bad], "x", color="tab:red", label="outside")
    if first is not None:
        i = rows.index(first)
        ax.axvline(i, color="tab:red", lw=1, ls="--")
        ax.annotate(f" first: {display_name(first.name)}", (i, 0.04), xycoords=("data", "axes fraction"),
                    ha="left", va="bottom", color="tab:red", fontsize=8, bbox={"fc": "white", "ec": "none"})
    ax.set_yscale("log")
    ax.set_ylim(bottom=FLOOR / 2)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("max |c - r| / max |r|")
    ax.grid(True, which="major", alpha=0.3)


def plot_errors(report: Report, path: str | Path | None = None):
    """The figure (returned); also saved atomically to ``path`` when given (format from its suffix)."""
    from matplotlib.figure import Figure  # lazy: `kit align compare` without --plot never imports matplotlib

    forward = [r for r in report.rows if r.kind in FORWARD_KINDS]
    backward = [r for r in report.rows if r.kind == "grad"]
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    ax_f, ax_b = fig.subplots(2, 1)
    _panel(ax_f, forward, report.first_forward, "forward: module outputs in execution order")
    _panel(ax_b, backward, report.first_gradient, "backward: parameter gradients in the order produced")
    ax_b.set_xlabel("entry (execution order)")
    ax_f.legend(loc="lower right", fontsize=8)
    verdict = "aligned" if report.aligned else "DIVERGENT"
    fig.suptitle(f"candidate {report.candidate.describe()}\nvs reference {report.reference.describe()}: {verdict}",
                 fontsize=10)
    if path is not None:
        atomic_savefig(fig, path, dpi=120)
    return fig
