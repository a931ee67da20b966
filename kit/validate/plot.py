"""The picture of a loss-curve comparison: both curves over the per-point relative error, verdicts in the title.

matplotlib is imported inside :func:`plot_comparison` only, so that ``kit compare`` without ``--plot`` never
loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kit.core.atomic import atomic_savefig
from kit.core.errors import UserError
from kit.validate.compare import DISPLAY_WINDOW, MRE_THRESHOLD, Comparison
from kit.validate.report import verdict_word
from kit.validate.series import moving_average

__all__ = ["plot_comparison"]


def plot_comparison(comparison: Comparison, path=None, ax=None):
    """Both curves (raw faint, smoothed bold) over the per-point relative error, verdicts in the title.

    With reference runs, the references' band is shaded under the curves and the lower panel shows the
    candidate against the band instead of against REFERENCE alone; the first divergence step is marked.

    ``ax``: draw into existing axes -- one Axes (the curves only) or two (curves, relative error);
    by default a new figure with both panels is made. ``path``: also save it there (PNG, or any
    format matplotlib knows from the extension). Axes given in place of ``path`` are taken as
    ``ax``. Returns the matplotlib Figure.
    """
    from matplotlib.figure import Figure  # lazy: `kit compare` without --plot never imports matplotlib

    if path is not None and not isinstance(path, (str, os.PathLike)):
        path, ax = None, path
    c = comparison
    if ax is None:
        fig = Figure(figsize=(9, 6.5), layout="constrained")
        ax_loss, ax_err = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    else:
        axes = list(np.atleast_1d(ax))
        ax_loss, ax_err = axes[0], (axes[1] if len(axes) > 1 else None)
        fig = ax_loss.figure
    window = c.smooth if c.smooth > 1 else DISPLAY_WINDOW
    shown = f"moving average of {window}" + ("" if c.smooth > 1 else ", display only")
    v = c.noise
    if v is not None:
        for run in v.references[1:]:
            ax_loss.plot(v.steps, moving_average(run, window), color="C0", alpha=0.35, linewidth=0.8)
        ax_loss.fill_between(
            v.steps, v.lower, v.upper, color="C0", alpha=0.18, linewidth=0,
            label=f"band of the {v.n_references} reference curves (smoothed over {v.window})",
        )  # fmt: skip
    for values, name, color in ((c.reference_losses, "reference", "C0"), (c.candidate_losses, "candidate", "C1")):
        curve = c.reference if name == "reference" else c.candidate
        ax_loss.plot(c.steps, values, color=color, alpha=0.3, linewidth=0.8)
        ax_loss.plot(
            c.steps, moving_average(values, window), color=color, linewidth=2,
            label=f"{name}: {Path(curve.path).name} ({shown})",
        )  # fmt: skip
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(loc="best", fontsize="small")
    ax_loss.grid(alpha=0.3)
    ax_loss.set_title(
        f"ModelZoo rule: {verdict_word(c.legacy.passed).upper()} (signed MRE {c.legacy.mean_relative_error:+.4f}, "
        f"MAE {c.legacy.mean_absolute_error:+.4g})\nstrict rule: {verdict_word(c.strict.passed).upper()} "
        f"(mean |rel| {c.strict.mean_relative_error:.4f}, mean |abs| {c.strict.mean_absolute_error:.4g})"
        + ("" if v is None else f"\nnoise-aware: {verdict_word(v.passed).upper()} ({v.outside_fraction:.0%} of "
           f"steps outside the band, offset {v.offset:+.2%}, limit +/- {v.offset_limit:.2%})"),
        fontsize="medium",
    )  # fmt: skip
    xlabel = "step" if c.alignment == "step" else "point (paired by position)"
    divergence = c.first_divergence_step if v is None else v.first_divergence_step
    if divergence is not None:
        for axis in (ax_loss, ax_err):
            if axis is not None:
                axis.axvline(divergence, color="C3", linewidth=1.2, label=f"first divergence: step {divergence}")
        ax_loss.legend(loc="best", fontsize="small")
    if ax_err is not None and v is not None:
        ax_err.fill_between(
            v.steps, 100 * np.expm1(-v.half_width), 100 * np.expm1(v.half_width), color="C0", alpha=0.18,
            linewidth=0, label="the references' band",
        )  # fmt: skip
        label = f"candidate vs the references' mean (both smoothed over {v.window})"
        ax_err.plot(v.steps, 100 * (v.candidate_smoothed / v.center - 1), color="C1", linewidth=1.2, label=label)
    if ax_err is not None:
        label = "(candidate - reference) / reference"
        alpha = 1.0 if v is None else 0.4
        ax_err.plot(c.steps, 100 * c.relative_error, color="C2", linewidth=1, label=label, alpha=alpha)
        for y in (MRE_THRESHOLD, -MRE_THRESHOLD):
            label = f"±{MRE_THRESHOLD:.0%}: the threshold on the mean" if y > 0 else None
            ax_err.axhline(100 * y, color="C3", linestyle="--", linewidth=1, label=label)
        ax_err.legend(loc="best", fontsize="x-small")
        ax_err.axhline(0, color="black", linewidth=0.6)
        ax_err.set_ylabel("relative error %")
        ax_err.set_xlabel(xlabel)
        ax_err.grid(alpha=0.3)
    else:
        ax_loss.set_xlabel(xlabel)
    if path is not None:
        path = Path(path)
        try:
            atomic_savefig(fig, path, dpi=120)
        except ValueError as e:  # an extension matplotlib cannot write
            raise UserError(f"{path}: cannot write the plot ({e})") from None
        except OSError as e:
            raise UserError(f"{path}: cannot write the plot ({e.strerror or e})") from None
    return fig
