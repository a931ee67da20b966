"""The loss-curve rules: is a port's training loss close enough to a reference run?

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

This module computes; :mod:`kit.validate.report` words the result, :mod:`kit.validate.plot` draws it and
:mod:`kit.validate.command` is ``kit compare``. Notebook API: :func:`compare_curves` (and
:func:`kit.validate.logformats.read_curve` to read a log).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from kit.core.errors import UserError
from kit.validate.logformats import Curve
from kit.validate.series import first_sustained, moving_average

if TYPE_CHECKING:
    from kit.validate.noise import NoiseVerdict

__all__ = ["MRE_THRESHOLD", "MAE_THRESHOLD", "DISPLAY_WINDOW", "Figures", "Comparison", "compare_curves"]

#: The ModelZoo thresholds, used by both rules.
MRE_THRESHOLD = 0.05
MAE_THRESHOLD = 0.0002
#: Window of the moving average drawn in bold on the plot when --smooth is off (ModelZoo's plot
#: smooths with a window of 5 too, for display only).
DISPLAY_WINDOW = 5


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
