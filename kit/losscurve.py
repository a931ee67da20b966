"""Loss-curve validation: is a port's training loss close enough to a reference run?

This is how a port to a new accelerator is judged: train the same recipe on the accelerator and on
a reference GPU, then compare the two loss curves. Tecorigin's ModelZoo does it with a small
``loss.py`` (``Demo/run_scripts/loss.py``)::

    MRE = mean((candidate - reference) / reference)      # signed
    MAE = mean(candidate - reference)                    # signed, despite its name
    pass  if  MRE <= 0.05  or  MAE <= 0.0002

over the two curves cut to the shorter one and paired by position. Because both means are signed,
errors of opposite sign cancel, and *any* candidate that sits below the reference passes: a curve
7 % below the reference everywhere has MRE = -0.07 <= 0.05. So this module reports two sets of
figures:

* **legacy** -- exactly what ModelZoo's ``loss.py`` computes, to quote in a ModelZoo pull request:
  every loss point of each file in file order, cut to the shorter, paired by position, signed means,
  never smoothed or skipped;
* **strict** (the default verdict) -- the same means over absolute values,
  ``mean(|c - r| / r)`` and ``mean(|c - r|)``, with the same thresholds, on the points paired by
  step when both logs carry steps (else by position), after the optional ``--skip`` (warm-up) and
  ``--smooth`` (moving average).

When the verdicts disagree, the report says why in a plain sentence.

The logs are read by :mod:`kit.logformats`, which says which formats exist and how each is read.

Notebook API: :func:`compare_curves`, :func:`format_report`, :func:`plot_comparison` (and
:func:`kit.logformats.read_curve` to read a log). CLI: ``kit compare REFERENCE CANDIDATE`` (exit 0
pass, 1 fail, 2 bad input).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from kit.atomic import atomic_savefig
from kit.errors import UserError
from kit.logformats import READERS, Curve, read_curve

#: The ModelZoo thresholds, used by both rules.
MRE_THRESHOLD = 0.05
MAE_THRESHOLD = 0.0002
#: Window of the moving average drawn in bold on the plot when --smooth is off (ModelZoo's plot
#: smooths with a window of 5 too, for display only).
DISPLAY_WINDOW = 5


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One rule's two means and its verdict (pass if MRE <= 0.05 or MAE <= 0.0002)."""

    mean_relative_error: float
    mean_absolute_error: float
    n_points: int

    @property
    def passed(self) -> bool:
        return bool(self.mean_relative_error <= MRE_THRESHOLD or self.mean_absolute_error <= MAE_THRESHOLD)

    def to_dict(self) -> dict:
        return {
            "mean_relative_error": _finite_or_none(self.mean_relative_error),
            "mean_absolute_error": _finite_or_none(self.mean_absolute_error),
            "passed": self.passed,
            "n_points": self.n_points,
        }


def _finite_or_none(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None  # JSON has no NaN


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average of ``window`` points; the first points average what there is.

    The kit's one moving average: ``--smooth``, the plot, and :class:`kit.liveplot.LiveLossPlot`.
    It lives here because ``--smooth`` makes it part of the strict rule, and liveplot imports it only
    when it draws, by which time matplotlib has loaded numpy anyway.
    """
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or not x.size:
        return x.copy()
    cumsum = np.concatenate([[0.0], np.cumsum(x)])
    end = np.arange(1, x.size + 1)
    start = np.maximum(end - window, 0)
    return (cumsum[end] - cumsum[start]) / (end - start)


@dataclass
class Comparison:
    """The result of :func:`compare_curves`; ``to_dict()`` is the ``--json`` object."""

    reference: Curve
    candidate: Curve
    alignment: str  # "step" or "position"
    steps: np.ndarray  # x of each compared point (the reference's steps, or positions)
    reference_losses: np.ndarray  # compared values after --skip, before --smooth
    candidate_losses: np.ndarray
    reference_used: np.ndarray  # what the strict figures use (smoothed when --smooth > 1)
    candidate_used: np.ndarray
    n_missing: int  # reference points the candidate lacks
    n_dropped: int  # candidate points with no reference counterpart
    n_skipped: int
    smooth: int
    skip: int
    legacy: Figures
    strict: Figures
    verdict: str = "strict"
    notes: list = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return len(self.steps)

    @property
    def relative_error(self) -> np.ndarray:
        """Signed per-point relative error of what the strict figures use."""
        return (self.candidate_used - self.reference_used) / self.reference_used

    @property
    def passed(self) -> bool:
        return (self.legacy if self.verdict == "legacy" else self.strict).passed

    @property
    def same_points(self) -> bool:
        """Whether both rules looked at the same pairs (then only the signs differ)."""
        return (
            self.legacy.n_points == self.n_points
            and self.n_skipped == 0
            and self.smooth <= 1
            and np.array_equal(self.reference_losses, self.reference.raw[: self.n_points])
            and np.array_equal(self.candidate_losses, self.candidate.raw[: self.n_points])
        )

    @property
    def disagreement(self) -> Optional[str]:
        """A plain sentence when the legacy and strict verdicts differ, else None."""
        if self.legacy.passed == self.strict.passed:
            return None
        pairing = (
            f"loss.py pairs all {self.legacy.n_points} points by position, while the strict figures use "
            f"{self.n_points} points paired by {self.alignment}"
            + (f", after skipping {self.n_skipped}" if self.n_skipped else "")
            + (f", smoothed over {self.smooth}" if self.smooth > 1 else "")
        )
        if not self.legacy.passed:  # only possible when the two rules looked at different points
            return (
                f"The two verdicts disagree: the strict figures pass but the ModelZoo rule fails, because "
                f"the two rules compare different points: {pairing}."
            )
        mre = self.legacy.mean_relative_error
        why = (
            f"the candidate sits below the reference on average (signed mean relative error {mre:+.2%}), "
            f"and any curve below the reference passes that rule"
            if mre < 0
            else f"errors of opposite sign cancel in its mean (signed mean relative error {mre:+.2%})"
        )
        return (
            f"The two verdicts disagree: the ModelZoo rule passes only because it averages signed errors: "
            f"{why}. On absolute values the candidate is off by {self.strict.mean_relative_error:.2%} on "
            f"average (threshold {MRE_THRESHOLD:.0%}) and by {self.strict.mean_absolute_error:.4g} in loss "
            f"(threshold {MAE_THRESHOLD:g}), so it fails."
            + ("" if self.same_points else f" Note also that {pairing}.")
        )

    def to_dict(self) -> dict:
        def curve(c: Curve) -> dict:
            return {
                "path": c.path,
                "format": c.format,
                "n_points": len(c),
                "has_steps": c.has_steps,
                "first_step": int(c.steps[0]),
                "last_step": int(c.steps[-1]),
                "overwritten": c.overwritten,
            }

        return {
            "n_points": self.n_points,
            "legacy": {**self.legacy.to_dict(), "alignment": "position"},
            "strict": self.strict.to_dict(),
            "passed": self.passed,
            "verdict": self.verdict,
            "alignment": self.alignment,
            "n_missing": self.n_missing,
            "n_dropped": self.n_dropped,
            "n_skipped": self.n_skipped,
            "smooth": self.smooth,
            "skip": self.skip,
            "thresholds": {"mean_relative_error": MRE_THRESHOLD, "mean_absolute_error": MAE_THRESHOLD},
            "verdicts_disagree": self.disagreement is not None,
            "disagreement": self.disagreement,
            "notes": list(self.notes),
            "reference": curve(self.reference),
            "candidate": curve(self.candidate),
        }


def _check_reference(values: np.ndarray, curve: Curve, positions: np.ndarray, raw: bool, what: str):
    """A relative error needs a finite, non-zero reference at every compared point."""
    bad = np.flatnonzero(~np.isfinite(values) | (values == 0))
    if bad.size:
        i = int(positions[bad[0]])
        value = "zero" if values[bad[0]] == 0 else str(values[bad[0]])
        raise UserError(
            f"{curve.where(i, raw=raw)}: the reference loss is {value}"
            + ("" if raw or not curve.has_steps else f" at step {curve.steps[i]}")
            + f"; {what} needs a finite, non-zero reference ({bad.size} such point(s))"
        )


def _legacy_figures(reference: Curve, candidate: Curve) -> Figures:
    """ModelZoo loss.py: every point in file order, cut to the shorter, paired by position, signed."""
    n = min(len(reference.raw), len(candidate.raw))
    r, c = reference.raw[:n], candidate.raw[:n]
    _check_reference(r, reference, np.arange(n), True, "the ModelZoo relative error")
    return Figures(float(np.mean((c - r) / r)), float(np.mean(c - r)), n)


def compare_curves(
    reference: Curve, candidate: Curve, smooth: int = 0, skip: int = 0, align: str = "auto", verdict: str = "strict"
) -> Comparison:
    """Compare ``candidate`` with ``reference`` under the ModelZoo rule and the strict rule.

    ``align``: "auto" pairs by step when both curves have steps, else by position; "step" or
    "position" force it. ``skip`` drops the first points of the paired curve (warm-up);
    ``smooth`` > 1 replaces both by a trailing moving average of that many points before the strict
    figures. The legacy figures ignore all three: they are what ModelZoo's loss.py computes.
    ``verdict`` ("strict" or "legacy") picks the rule behind ``.passed``.
    """
    if align not in ("auto", "step", "position"):
        raise UserError(f"unknown alignment {align!r}; choose auto, step or position")
    if verdict not in ("strict", "legacy"):
        raise UserError(f"unknown verdict {verdict!r}; choose strict or legacy")
    if smooth < 0 or skip < 0:
        raise UserError("--smooth and --skip take a number of points, 0 or more")
    both_have_steps = reference.has_steps and candidate.has_steps
    if align == "step" and not both_have_steps:
        lacking = reference if not reference.has_steps else candidate
        raise UserError(f"{lacking.path}: this log has no step numbers; it can only be paired by position")
    alignment = "step" if both_have_steps and align != "position" else "position"

    if alignment == "step":
        common, ri, ci = np.intersect1d(reference.steps, candidate.steps, assume_unique=True, return_indices=True)
        if not common.size:
            raise UserError(
                f"{candidate.path}: no step in common with {reference.path} (reference steps "
                f"{reference.steps[0]}..{reference.steps[-1]}, candidate steps {candidate.steps[0]}.."
                f"{candidate.steps[-1]}); use --align position to pair them by order"
            )
        steps = common
    else:
        n = min(len(reference), len(candidate))
        ri = ci = np.arange(n)
        steps = reference.steps[:n] if reference.has_steps else ri
    n_missing, n_dropped = len(reference) - len(ri), len(candidate) - len(ci)

    n_skipped = min(skip, len(ri))
    ri, ci, steps = ri[n_skipped:], ci[n_skipped:], steps[n_skipped:]
    if not len(ri):
        raise UserError(f"--skip {skip} leaves nothing to compare: only {n_skipped} points were paired")
    ref, cand = reference.losses[ri], candidate.losses[ci]
    _check_reference(ref, reference, ri, False, "a relative error")
    ref_used, cand_used = moving_average(ref, smooth), moving_average(cand, smooth)
    _check_reference(ref_used, reference, ri, False, "the smoothed relative error")
    strict = Figures(
        float(np.mean(np.abs(cand_used - ref_used) / ref_used)), float(np.mean(np.abs(cand_used - ref_used))), len(ri)
    )
    legacy = _legacy_figures(reference, candidate)

    notes = list(dict.fromkeys(reference.notes + candidate.notes))  # once each, in order
    bad = np.flatnonzero(~np.isfinite(candidate.losses[ci]))
    if bad.size:
        notes.append(
            f"{candidate.where(int(ci[bad[0]]))}: the candidate loss is {candidate.losses[ci[bad[0]]]} "
            f"({bad.size} non-finite point(s)); the figures are not numbers and the comparison fails"
        )
    return Comparison(
        reference, candidate, alignment, steps, ref, cand, ref_used, cand_used,
        n_missing, n_dropped, n_skipped, smooth, skip, legacy, strict, verdict, notes,
    )  # fmt: skip


def _verdict_word(passed: bool) -> str:
    return "pass" if passed else "fail"


def format_report(comparison: Comparison) -> str:
    """The text ``kit compare`` prints: the ModelZoo lines, the strict figures, the verdict."""
    c = comparison
    legacy, strict = c.legacy, c.strict
    # The lines ModelZoo's loss.py prints. Its source is not quoted in our references; what is known
    # (modelzoo.md, and Tecorigin's HiViT README quoting "Rule,mean_absolute_error" and "pass") is:
    # the two figure names, a "Rule" line naming the numerically smaller of the two signed figures
    # (it does not affect the verdict), then pass or fail. The exact spacing and the number printed
    # on the Rule line are our closest guess.
    rule = (
        ("mean_absolute_error", legacy.mean_absolute_error)
        if legacy.mean_absolute_error < legacy.mean_relative_error
        else ("mean_relative_error", legacy.mean_relative_error)
    )
    out = [
        f"reference: {c.reference.describe()}",
        f"candidate: {c.candidate.describe()}",
        "",
        f"ModelZoo loss.py figures (signed means; all {legacy.n_points} points paired by position):",
        f"MeanRelativeError: {legacy.mean_relative_error}",
        f"MeanAbsoluteError: {legacy.mean_absolute_error}",
        f"Rule,{rule[0]} {rule[1]}",
        _verdict_word(legacy.passed),
        "",
        f"strict figures (means of absolute values; {c.n_points} points paired by {c.alignment}, "
        f"{c.n_missing} missing from the candidate, {c.n_dropped} dropped from the candidate, "
        f"{c.n_skipped} skipped, smoothing {'window ' + str(c.smooth) if c.smooth > 1 else 'off'}):",
        f"mean |relative error|: {strict.mean_relative_error:.6g}  (pass if <= {MRE_THRESHOLD})",
        f"mean |absolute error|: {strict.mean_absolute_error:.6g}  (pass if <= {MAE_THRESHOLD})",
        _verdict_word(strict.passed),
        "",
    ]
    out += [f"note: {n}" for n in c.notes]
    if c.disagreement:
        out.append(c.disagreement)
    rule_name = "ModelZoo rule, --verdict legacy" if c.verdict == "legacy" else "strict rule"
    out.append(f"verdict: {'PASS' if c.passed else 'FAIL'} ({rule_name})")
    return "\n".join(out)


def plot_comparison(comparison: Comparison, path=None, ax=None):
    """Both curves (raw faint, smoothed bold) over the per-point relative error, verdicts in the title.

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
        f"ModelZoo rule: {_verdict_word(c.legacy.passed).upper()} (signed MRE {c.legacy.mean_relative_error:+.4f}, "
        f"MAE {c.legacy.mean_absolute_error:+.4g})\nstrict rule: {_verdict_word(c.strict.passed).upper()} "
        f"(mean |rel| {c.strict.mean_relative_error:.4f}, mean |abs| {c.strict.mean_absolute_error:.4g})",
        fontsize="medium",
    )
    xlabel = "step" if c.alignment == "step" else "point (paired by position)"
    if ax_err is not None:
        label = "(candidate - reference) / reference"
        ax_err.plot(c.steps, 100 * c.relative_error, color="C2", linewidth=1, label=label)
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


# --------------------------------------------------------------------------------------------
# CLI: kit compare REFERENCE CANDIDATE
# --------------------------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare a candidate training-loss curve with a reference run. Prints ModelZoo loss.py's signed "
        "figures and the strict figures (the same means over absolute values, same thresholds: pass if "
        "mean relative error <= 0.05 or mean absolute error <= 0.0002). Exit code 0 pass, 1 fail, 2 bad input."
    )
    parser.add_argument("reference", metavar="REFERENCE", help="the reference run's log (e.g. the CUDA run)")
    parser.add_argument("candidate", metavar="CANDIDATE", help="the candidate run's log (e.g. the SDAA run)")
    formats = "; ".join(f"{k} = {r.describe}" for k, r in READERS.items())
    fmt = {"choices": list(READERS), "metavar": "FMT"}
    parser.add_argument("--format", **fmt, help=f"force the format of both logs: {formats}")
    parser.add_argument("--reference-format", **fmt, help="force the reference's format")
    parser.add_argument("--candidate-format", **fmt, help="force the candidate's format")
    parser.add_argument(
        "--align", choices=("auto", "step", "position"), default="auto",
        help="pair points by step (auto: when both logs have steps) or by position",
    )  # fmt: skip
    parser.add_argument(
        "--smooth", type=_count, default=0, metavar="N",
        help="moving average of N points before the strict figures (default off)",
    )  # fmt: skip
    parser.add_argument(
        "--skip", type=_count, default=0, metavar="N",
        help="leave out the first N paired points, e.g. warm-up (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--verdict", choices=("strict", "legacy"), default="strict",
        help="which rule sets the exit code (default strict; legacy = ModelZoo loss.py's signed rule)",
    )  # fmt: skip
    parser.add_argument("--plot", metavar="FILE.png", help="draw both curves and the relative error into this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")


def run(args: argparse.Namespace) -> int:
    reference = read_curve(args.reference, args.reference_format or args.format)
    candidate = read_curve(args.candidate, args.candidate_format or args.format)
    comparison = compare_curves(reference, candidate, args.smooth, args.skip, args.align, args.verdict)
    if args.plot:
        plot_comparison(comparison, args.plot)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print(format_report(comparison))
        if args.plot:
            print(f"plot: {args.plot}")
    sys.stdout.flush()
    return 0 if comparison.passed else 1
