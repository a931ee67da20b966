"""The noise-aware verdict: is a candidate's loss curve within the run-to-run noise of the reference setup?

The ModelZoo rule and the strict rule compare a candidate with *one* reference run against a fixed 5 %
threshold, which knows nothing of how far two healthy runs of the same setup lie apart. Given several
reference runs (``kit compare REFERENCE CANDIDATE --reference-runs RUN ...``), this module estimates that
spread and judges the candidate against it.

Which reference runs
--------------------
A port differs from its reference only in arithmetic (same recipe, seed and data order), so the references
must differ from one another in the same way: runs that share the seed and data order and differ only in
numerics (thread count, TF32, non-deterministic kernels, or the kit's ``numerics.init_perturbation``,
:mod:`kit.train.perturb`). Runs with other seeds differ in much more and make a band loose enough to hide a bug.

The rule
--------
The ``m`` reference curves and the candidate are paired by step as the two-run comparison pairs them
(points all of them share; ``--skip`` drops the first ones). Everything is measured in log-loss, so a
difference is a relative difference. Three tests, all of which must pass:

1. **Band.** Each curve is smoothed (moving average of ``--smooth`` points, else :data:`WINDOW`). At each
   step the band is the references' mean +/- :data:`K` prediction standard deviations, the standard deviation
   of a new run ``sd * sqrt(1 + 1/m)``. With 3-5 references a per-step standard deviation is too uncertain
   to use alone, so the variance is pooled over the ``2 * window + 1`` steps around each step (training
   noise changes slowly along a curve). The candidate may lie outside the band on at most
   :data:`MAX_OUTSIDE` of the steps: single steps outside are what chaotic training produces.
2. **Sustained divergence.** The first step from which the smoothed candidate stays outside the band to the
   end of the curve, over at least ``window`` steps, is a divergence and fails: a port that drifts away
   late would otherwise hide behind a small outside fraction.
3. **Systematic offset.** Per-step bands cannot see a small constant offset under large per-step noise; a
   mean over the run can. The candidate's mean log-loss minus the references' mean is its offset; each
   reference's offset against the mean of the others (leave-one-out) shows how large an offset healthy
   runs have. With few references their spread is itself uncertain, so the limit is the Student-t
   prediction interval for one more run: ``|offset| <= t(m - 1, 1 - ALPHA / 2) * sd(levels) * sqrt(1 + 1/m)``.

Where the references agree to the last bits (the first steps, very short runs) their spread is zero and
any other arithmetic would fail; :data:`FLOOR` adds a relative standard deviation that float16's rounding
of a loss already exceeds, so a difference that small is never called significant. Non-finite candidate
points lie outside the band and make the offset non-finite: such a candidate fails.

The constants were chosen from the statistics above, not fitted to the measurements; docs/validation.md gives
the rule's measured false-alarm rate and power on the workshop HiViT.

Notebook API: :func:`judge` (on paired arrays; :func:`kit.validate.compare.compare_curves` calls it when given
reference runs), :class:`NoiseVerdict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage, stats

from kit.core.errors import UserError
from kit.validate.series import first_sustained, moving_average

__all__ = ["WINDOW", "K", "MAX_OUTSIDE", "ALPHA", "FLOOR", "NoiseVerdict", "judge"]

#: Moving-average window of the band and divergence tests when ``--smooth`` is off.
WINDOW = 10
#: Half-width of the band, in prediction standard deviations.
K = 3.0
#: The largest fraction of steps the candidate may spend outside the band.
MAX_OUTSIDE = 0.10
#: Two-sided significance level of the offset test.
ALPHA = 0.01
#: Relative standard deviation added to every spread (float16 rounds a loss to about 0.05 %).
FLOOR = 1e-3


@dataclass
class NoiseVerdict:
    """The result of :func:`judge`; ``to_dict()`` is the ``"noise"`` object of ``kit compare --json``."""

    steps: np.ndarray  # the paired steps (or positions)
    references: np.ndarray  # (m, n) reference losses, unsmoothed
    candidate: np.ndarray  # (n,) candidate losses, unsmoothed
    window: int
    center: np.ndarray  # the band's centre, in loss (geometric mean of the smoothed references)
    half_width: np.ndarray  # the band's half-width in log-loss (a relative half-width)
    candidate_smoothed: np.ndarray
    outside: np.ndarray  # bool per step
    offset: float  # the candidate's mean log-loss minus the references' mean (a relative offset)
    reference_offsets: np.ndarray  # each reference's offset against the mean of the others
    offset_limit: float

    @property
    def n_references(self) -> int:
        return len(self.references)

    @property
    def n_points(self) -> int:
        return len(self.steps)

    @property
    def outside_fraction(self) -> float:
        return float(np.mean(self.outside))

    @property
    def first_divergence_index(self) -> Optional[int]:
        return first_sustained(self.outside, self.window)

    @property
    def first_divergence_step(self) -> Optional[int]:
        i = self.first_divergence_index
        return None if i is None else int(self.steps[i])

    @property
    def offset_passed(self) -> bool:
        return bool(abs(self.offset) <= self.offset_limit)  # False for a non-finite offset

    @property
    def band_passed(self) -> bool:
        return self.outside_fraction <= MAX_OUTSIDE

    @property
    def passed(self) -> bool:
        return self.band_passed and self.first_divergence_index is None and self.offset_passed

    @property
    def lower(self) -> np.ndarray:
        return self.center * np.exp(-self.half_width)

    @property
    def upper(self) -> np.ndarray:
        return self.center * np.exp(self.half_width)

    @property
    def verdict(self) -> str:
        return "within run-to-run noise" if self.passed else "outside run-to-run noise"

    def reasons(self) -> list[str]:
        """One plain sentence per failed test (empty when it passes)."""
        out = []
        if not self.band_passed:
            out.append(f"outside the band on {self.outside_fraction:.1%} of the steps (at most {MAX_OUTSIDE:.0%})")
        if self.first_divergence_step is not None:
            out.append(f"stays outside the band from step {self.first_divergence_step} on")
        if not self.offset_passed:
            out.append(f"systematic offset {_pct(self.offset)} beyond the references' +/- {self.offset_limit:.2%}")
        return out

    def to_dict(self) -> dict:
        finite = float(self.offset) if np.isfinite(self.offset) else None  # JSON has no NaN
        return {
            "n_references": self.n_references,
            "outside_fraction": self.outside_fraction,
            "first_divergence_step": self.first_divergence_step,
            "passed": self.passed,
            "verdict": self.verdict,
            "n_points": self.n_points,
            "n_outside": int(np.sum(self.outside)),
            "band_passed": self.band_passed,
            "offset": finite,
            "offset_limit": float(self.offset_limit),
            "offset_passed": self.offset_passed,
            "reference_offsets": [float(x) for x in self.reference_offsets],
            "window": self.window,
            "rule": {"k": K, "max_outside_fraction": MAX_OUTSIDE, "alpha": ALPHA, "floor": FLOOR},
        }


def _pct(x: float) -> str:
    return f"{x:+.2%}" if np.isfinite(x) else str(x)


def judge(steps: np.ndarray, references: np.ndarray, candidate: np.ndarray, window: int = WINDOW) -> NoiseVerdict:
    """Judge ``candidate`` against the spread of ``references`` (an ``(m, n)`` array, m >= 2) on paired points.

    The arrays are losses at the same ``n`` steps; the references must be finite and positive (the caller
    checks them and names the file). See the module docstring for the rule.
    """
    references = np.asarray(references, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    m, n = references.shape
    if m < 2:
        raise UserError("the noise-aware verdict needs two or more reference curves")
    if n < 2:
        raise UserError(f"the curves share {n} usable point(s); the noise-aware verdict needs at least 2")
    window = max(1, int(window))
    with np.errstate(invalid="ignore", divide="ignore"):  # a diverged candidate has NaN or non-positive points
        smoothed = np.log([moving_average(r, window) for r in references])
        cand_smoothed = np.log(moving_average(candidate, window))
        levels, cand_level = np.log(references).mean(axis=1), np.log(candidate).mean()
    center = smoothed.mean(axis=0)
    pooled = ndimage.uniform_filter1d(smoothed.var(axis=0, ddof=1), size=2 * window + 1, mode="nearest")
    half_width = K * np.sqrt(pooled * (1 + 1 / m) + FLOOR**2)
    with np.errstate(invalid="ignore"):
        outside = ~(np.abs(cand_smoothed - center) <= half_width)  # NaN counts as outside

    others = (levels.sum() - levels) / (m - 1)
    spread = np.sqrt(levels.var(ddof=1) * (1 + 1 / m) + FLOOR**2)
    return NoiseVerdict(
        steps=np.asarray(steps), references=references, candidate=candidate, window=window,
        center=np.exp(center), half_width=half_width, candidate_smoothed=np.exp(cand_smoothed), outside=outside,
        offset=float(cand_level - levels.mean()), reference_offsets=levels - others,
        offset_limit=float(stats.t.ppf(1 - ALPHA / 2, m - 1) * spread),
    )  # fmt: skip
