"""The text ``kit compare`` prints: ModelZoo loss.py's own lines, the strict figures, the noise-aware figures.

Apart from :mod:`kit.validate.compare` so that the rules hold no wording: a notebook shows the same report
(:func:`format_report`) as the command line does.
"""

from __future__ import annotations

from kit.validate.compare import MAE_THRESHOLD, MRE_THRESHOLD, Comparison

__all__ = ["format_report", "verdict_word"]


def verdict_word(passed: bool) -> str:
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
        verdict_word(legacy.passed),
        "",
        f"strict figures (means of absolute values; {c.n_points} points paired by {c.alignment}, "
        f"{c.n_missing} missing from the candidate, {c.n_dropped} dropped from the candidate, "
        f"{c.n_skipped} skipped, smoothing {'window ' + str(c.smooth) if c.smooth > 1 else 'off'}):",
        f"mean |relative error|: {strict.mean_relative_error:.6g}  (pass if <= {MRE_THRESHOLD})",
        f"mean |absolute error|: {strict.mean_absolute_error:.6g}  (pass if <= {MAE_THRESHOLD})",
        verdict_word(strict.passed),
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
