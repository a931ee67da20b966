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

When the verdicts disagree, the report says why in a plain sentence. The report also names the first
step from which the relative difference, smoothed, stays beyond the 5 % threshold to the end of the
curve (sustained divergence: single noisy steps do not count).

Given more runs of the reference setup (``--reference-runs``), a third verdict, **noise-aware**, judges
the candidate against the run-to-run spread of all the reference curves: :mod:`kit.validate.noise` holds its
rule; ``--verdict noise`` makes it the one behind the exit code.

The logs are read by :mod:`kit.validate.logformats`, which says which formats exist and how each is read.

Notebook API: :func:`compare_curves`, :func:`format_report`, :func:`plot_comparison` (and
:func:`kit.validate.logformats.read_curve` to read a log). CLI: ``kit compare REFERENCE CANDIDATE
[--reference-runs RUN ...]`` (exit 0 pass, 1 fail, 2 bad input).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from kit.core.atomic import atomic_savefig
from kit.core.errors import UserError
from kit.validate.configdiff import config_differences, run_folder_config
from kit.validate.logformats import READERS, Curve, read_curve
from kit.validate.series import first_sustained, moving_average

if TYPE_CHECKING:
    from kit.validate.noise import NoiseVerdict

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
    noise: Optional["NoiseVerdict"] = None  # the noise-aware verdict, when there are reference runs

    @property
    def n_points(self) -> int:
        return len(self.steps)

    @property
    def relative_error(self) -> np.ndarray:
        """Signed per-point relative error of what the strict figures use."""
        return (self.candidate_used - self.reference_used) / self.reference_used

    @property
    def passed(self) -> bool:
        return {"legacy": self.legacy, "noise": self.noise}.get(self.verdict, self.strict).passed

    @property
    def divergence_window(self) -> int:
        """Points in the moving average behind :attr:`first_divergence_step`."""
        return self.smooth if self.smooth > 1 else DISPLAY_WINDOW

    @property
    def first_divergence_step(self) -> Optional[int]:
        """The first step from which the smoothed relative difference stays beyond the 5 % threshold (or None)."""
        w = self.divergence_window
        relative = moving_average(self.candidate_losses, w) / moving_average(self.reference_losses, w) - 1
        i = first_sustained(~(np.abs(relative) <= MRE_THRESHOLD), w)  # a NaN point is beyond
        return None if i is None else int(self.steps[i])

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

        extra = {} if self.noise is None else {"noise": self.noise.to_dict()}
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
        } | extra


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


def _pair(reference: Curve, others: Sequence[tuple[Curve, str]], alignment: str) -> tuple:
    """``(x, reference indices, [indices of each other curve])`` of the points all the curves share: by step,
    or the first ones by position. ``others`` are ``(curve, what it is)``, for the message when one has no
    step in common with the reference."""
    if alignment == "position":
        n = min(len(reference), *(len(other) for other, _ in others))
        index = np.arange(n)
        return (reference.steps[:n] if reference.has_steps else index), index, [index] * len(others)
    common = reference.steps
    for other, what in others:
        shared = np.intersect1d(reference.steps, other.steps, assume_unique=True)
        if not shared.size:
            raise UserError(
                f"{other.path}: no step in common with {reference.path} (reference steps "
                f"{reference.steps[0]}..{reference.steps[-1]}, {what} steps {other.steps[0]}.."
                f"{other.steps[-1]}); use --align position to pair them by order"
            )
        common = np.intersect1d(common, shared, assume_unique=True)
    if not common.size:
        raise UserError(
            f"the reference runs and the candidate share no step with {reference.path} all at once; "
            "use --align position to pair them by order"
        )

    def index(curve: Curve) -> np.ndarray:
        return np.intersect1d(common, curve.steps, assume_unique=True, return_indices=True)[2]

    return common, index(reference), [index(other) for other, _ in others]


def _has_steps_or_fail(curves: Sequence[Curve], align: str) -> bool:
    """Whether every curve has steps; with ``--align step`` one without them is an error."""
    lacking = [c for c in curves if not c.has_steps]
    if align == "step" and lacking:
        raise UserError(f"{lacking[0].path}: this log has no step numbers; it can only be paired by position")
    return not lacking


def compare_curves(
    reference: Curve,
    candidate: Curve,
    smooth: int = 0,
    skip: int = 0,
    align: str = "auto",
    verdict: str = "strict",
    reference_runs: Sequence[Curve] = (),
) -> Comparison:
    """Compare ``candidate`` with ``reference`` under the ModelZoo rule and the strict rule.

    ``align``: "auto" pairs by step when both curves have steps, else by position; "step" or
    "position" force it. ``skip`` drops the first points of the paired curve (warm-up);
    ``smooth`` > 1 replaces both by a trailing moving average of that many points before the strict
    figures. The legacy figures ignore all three: they are what ModelZoo's loss.py computes.
    ``reference_runs``: more runs of the reference setup; with them the comparison also carries the
    noise-aware verdict (:mod:`kit.validate.noise`), on the points every curve shares.
    ``verdict`` ("strict", "legacy" or "noise") picks the rule behind ``.passed``.
    """
    if align not in ("auto", "step", "position"):
        raise UserError(f"unknown alignment {align!r}; choose auto, step or position")
    if verdict not in ("strict", "legacy", "noise"):
        raise UserError(f"unknown verdict {verdict!r}; choose strict, legacy or noise")
    if verdict == "noise" and not reference_runs:
        raise UserError("--verdict noise needs more runs of the reference setup: --reference-runs RUN [RUN ...]")
    for flag, value in (("--smooth", smooth), ("--skip", skip)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise UserError(f"{flag} {value!r}: must be a whole number of points, 0 or more")
    both_have_steps = _has_steps_or_fail([reference, candidate], align)
    alignment = "step" if both_have_steps and align != "position" else "position"

    steps, ri, (ci,) = _pair(reference, [(candidate, "candidate")], alignment)
    n_missing, n_dropped = len(reference) - len(ri), len(candidate) - len(ci)

    n_skipped = min(skip, len(ri))
    ri, ci, steps = ri[n_skipped:], ci[n_skipped:], steps[n_skipped:]
    if not len(ri):
        raise UserError(f"--skip {skip} leaves nothing to compare: the curves pair {n_skipped} points, "
                        f"so it must be at most {max(n_skipped - 1, 0)}")
    if smooth > len(ri):
        raise UserError(f"--smooth {smooth}: must be at most the {len(ri)} points compared (after --skip {skip}); "
                        "0 or 1: no smoothing")
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
    noise = None
    if reference_runs:
        noise = _judge_noise(reference, candidate, list(reference_runs), alignment, align, smooth, skip)
        notes = list(dict.fromkeys(notes + [n for run in reference_runs for n in run.notes]))
    return Comparison(
        reference, candidate, alignment, steps, ref, cand, ref_used, cand_used,
        n_missing, n_dropped, n_skipped, smooth, skip, legacy, strict, verdict, notes, noise,
    )  # fmt: skip


def _judge_noise(reference: Curve, candidate: Curve, runs: list, alignment: str, align: str, smooth: int, skip: int):
    """The noise-aware verdict on the points REFERENCE, every run and the candidate share (after ``skip``)."""
    from kit.validate import noise  # scipy's statistics load only when there are reference runs

    if alignment == "step" and not _has_steps_or_fail(runs, align):
        lacking = next(run for run in runs if not run.has_steps)
        raise UserError(
            f"{lacking.path}: this reference run has no step numbers, but the candidate is paired with "
            "the reference by step; use --align position to pair every curve by order"
        )
    others = [(candidate, "candidate")] + [(run, "reference run") for run in runs]
    steps, ri, (ci, *run_indices) = _pair(reference, others, alignment)
    steps, ri, ci = steps[skip:], ri[skip:], ci[skip:]
    run_indices = [index[skip:] for index in run_indices]
    if len(steps) < 2:
        raise UserError(
            f"the reference runs and the candidate share {len(steps)} point(s) after --skip {skip}; "
            "the noise-aware verdict needs at least 2"
        )
    for curve, index in [(reference, ri)] + list(zip(runs, run_indices)):
        _check_reference(curve.losses[index], curve, index, False, "the noise-aware verdict")
        negative = np.flatnonzero(curve.losses[index] < 0)
        if negative.size:
            raise UserError(
                f"{curve.where(int(index[negative[0]]))}: the reference loss is {curve.losses[index[negative[0]]]}; "
                "the noise-aware verdict compares relative differences and needs positive losses"
            )
    references = np.stack([reference.losses[ri]] + [run.losses[i] for run, i in zip(runs, run_indices)])
    return noise.judge(steps, references, candidate.losses[ci], smooth if smooth > 1 else noise.WINDOW)


def _verdict_word(passed: bool) -> str:
    return "pass" if passed else "fail"


def _divergence_line(c: Comparison) -> str:
    """The two-run sustained divergence, in one line."""
    step, smoothed = c.first_divergence_step, f"the relative difference, smoothed over {c.divergence_window} points"
    if step is None:
        return f"first divergence: none ({smoothed}, never stays beyond {MRE_THRESHOLD:.0%})"
    return f"first divergence: step {step} (from there on {smoothed}, stays beyond {MRE_THRESHOLD:.0%})"


def _noise_lines(c: Comparison) -> list[str]:
    """The noise-aware section of the report."""
    from kit.validate import noise as rule

    v = c.noise
    runs = v.n_references - 1
    loo = ", ".join(f"{x:+.2%}" for x in v.reference_offsets)
    divergence = "none" if v.first_divergence_step is None else f"from step {v.first_divergence_step}"
    return [
        f"noise-aware figures ({v.n_references} reference curves: REFERENCE and {runs} --reference-runs; "
        f"{v.n_points} points all of them share, paired by {c.alignment}; smoothing window {v.window}):",
        f"outside the reference band: {int(v.outside.sum())} of {v.n_points} steps ({v.outside_fraction:.1%})  "
        f"(pass if <= {rule.MAX_OUTSIDE:.0%}; band = the references' mean +/- {rule.K:g} prediction sd)",
        f"sustained divergence: {divergence}  (pass if none: outside the band from a step to the end)",
        f"systematic offset: {v.offset:+.2%}  (pass if within +/- {v.offset_limit:.2%}, Student's t at "
        f"{1 - rule.ALPHA:.0%}; the references' own leave-one-out offsets: {loo})",
        v.verdict + ("" if v.passed else ": " + "; ".join(v.reasons())),
        "",
    ]


def format_report(comparison: Comparison) -> str:
    """The text ``kit compare`` prints: the ModelZoo lines, the strict figures, the noise-aware figures when
    there are reference runs, the verdict."""
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
        _divergence_line(c),
        "",
    ]
    if c.noise is not None:
        out += _noise_lines(c)
    out += [f"note: {n}" for n in c.notes]
    if c.disagreement:
        out.append(c.disagreement)
    rule_name = {"legacy": "ModelZoo rule, --verdict legacy", "noise": "noise-aware rule, --verdict noise"}.get(
        c.verdict, "strict rule"
    )
    out.append(f"verdict: {'PASS' if c.passed else 'FAIL'} ({rule_name})")
    return "\n".join(out)


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
        f"ModelZoo rule: {_verdict_word(c.legacy.passed).upper()} (signed MRE {c.legacy.mean_relative_error:+.4f}, "
        f"MAE {c.legacy.mean_absolute_error:+.4g})\nstrict rule: {_verdict_word(c.strict.passed).upper()} "
        f"(mean |rel| {c.strict.mean_relative_error:.4f}, mean |abs| {c.strict.mean_absolute_error:.4g})"
        + ("" if v is None else f"\nnoise-aware: {_verdict_word(v.passed).upper()} ({v.outside_fraction:.0%} of "
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


# --------------------------------------------------------------------------------------------
# CLI: kit compare REFERENCE CANDIDATE
# --------------------------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be a whole number of points, 0 or more")
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
        "--verdict", choices=("strict", "legacy", "noise"), default="strict",
        help="which rule sets the exit code (default strict; legacy = ModelZoo loss.py's signed rule; "
        "noise = the noise-aware rule, which needs --reference-runs)",
    )  # fmt: skip
    parser.add_argument(
        "--reference-runs", nargs="+", default=[], metavar="RUN",
        help="more runs of the reference setup (same seed and data, other numerics: see kit.train.perturb); with "
        "them the noise-aware verdict judges the candidate against the run-to-run spread of all the reference curves",
    )  # fmt: skip
    parser.add_argument("--plot", metavar="FILE.png", help="draw both curves and the relative error into this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")


def _run_differences(reference: str, candidate: str) -> Optional[list[str]]:
    """When both sides are kit runs (a run folder or its metrics.jsonl, beside a ``config.json``): the
    configuration differences that matter (:mod:`kit.validate.configdiff`), said before the numbers; else None."""
    configs = [run_folder_config(path) for path in (reference, candidate)]
    return config_differences(*configs) if all(c is not None for c in configs) else None


def run(args: argparse.Namespace) -> int:
    reference = read_curve(args.reference, args.reference_format or args.format)
    candidate = read_curve(args.candidate, args.candidate_format or args.format)
    runs = [read_curve(run, args.reference_format or args.format) for run in args.reference_runs]
    comparison = compare_curves(reference, candidate, args.smooth, args.skip, args.align, args.verdict, runs)
    differences = _run_differences(args.reference, args.candidate)
    if args.plot:
        plot_comparison(comparison, args.plot)
    if args.json:
        result = comparison.to_dict()
        if differences is not None:
            result["config_differences"] = differences
        print(json.dumps(result, indent=2))
    else:
        if differences:
            print("configuration differences (reference vs candidate):")
            print("".join(f"  {line}\n" for line in differences))
        print(format_report(comparison))
        if args.plot:
            print(f"plot: {args.plot}")
    sys.stdout.flush()
    return 0 if comparison.passed else 1
