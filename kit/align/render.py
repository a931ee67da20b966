"""The text report of ``kit align compare``: configuration first, then the numbers, then the verdict.

By default only the entries outside tolerance are listed (the first :data:`SHOWN` of them), since a
ViT-base has some 700 entries and the first divergent one is what a porting engineer looks for;
``--all`` lists every entry.
"""

from __future__ import annotations

from typing import Optional

from kit.align.compare import Report, Row
from kit.align.values import read_number

__all__ = ["SHOWN", "display_name", "render_text"]

SHOWN = 20


def display_name(name: str) -> str:
    return name or "(model)"


def _number(x: Optional[float], spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _row(row: Row) -> str:
    mark = "ok" if row.within else "OUT"
    nonfinite = f"  NaN/Inf: {row.nonfinite[0]} vs {row.nonfinite[1]}" if any(row.nonfinite) else ""
    errors = f"{_number(row.max_abs, '9.2e')} {_number(row.max_rel, '9.2e')} {_number(row.cosine, '10.7f')}"
    return (f"  {row.kind:<8} {display_name(row.name):<40} {errors} {row.basis:<10} {row.tolerance.precision:<5} "
            f"{mark}{nonfinite}")


def _first(label: str, row: Optional[Row]) -> str:
    if row is None:
        return f"{label}: none"
    if not row.same_nonfinite:
        return (f"{label}: {display_name(row.name)} (NaN/Inf elements: reference {row.nonfinite[0]}, "
                f"candidate {row.nonfinite[1]})")
    t = row.tolerance
    return (f"{label}: {display_name(row.name)} (max_rel {_number(row.max_rel, '.2e')} vs <= {t.max_rel:g}, "
            f"cosine {_number(row.cosine, '.7f')} vs >= {t.cosine:g}, from {row.basis})")


def render_text(report: Report, all_rows: bool = False) -> str:
    ref, cand = report.reference, report.candidate
    lines = [f"reference: {ref.path}  ({ref.describe()})", f"candidate: {cand.path}  ({cand.describe()})"]
    if report.differences:
        lines += ["configuration differences:"] + [f"  {d}" for d in report.differences]
    else:
        lines.append("configuration differences: none")
    from_stats = sum(r.basis == "statistics" for r in report.rows)
    lines.append(f"compared {len(report.rows)} entries: {len(report.rows) - from_stats} from full tensors, "
                 f"{from_stats} from statistics only (max_abs and max_rel then lower bounds, no cosine)")
    lines.append(f"loss: {read_number(ref.index['loss']):.6g} vs {read_number(cand.index['loss']):.6g}")
    outside = [r for r in report.rows if not r.within]
    shown = report.rows if all_rows else outside[:SHOWN]
    if shown:
        lines.append(f"  {'kind':<8} {'name':<40} {'max_abs':>9} {'max_rel':>9} {'cosine':>10} {'basis':<10} prec.")
        lines += [_row(r) for r in shown]
        if not all_rows and len(outside) > SHOWN:
            lines.append(f"  ... {len(outside) - SHOWN} more outside tolerance (--all lists every entry)")
    lines.append(_first("first forward entry outside tolerance", report.first_forward))
    lines.append(_first("first gradient outside tolerance", report.first_gradient))
    nonfinite = report.first_nonfinite
    lines.append("first NaN/Inf: " + ("none" if nonfinite is None else
                 f"{display_name(nonfinite.name)} ({nonfinite.kind}; NaN+Inf elements: reference "
                 f"{nonfinite.nonfinite[0]}, candidate {nonfinite.nonfinite[1]})"))
    for label, keys in (("ran only in the reference", report.only_reference),
                        ("ran only in the candidate", report.only_candidate)):
        if keys:
            lines.append(f"{label} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}")
    lines.append(f"verdict: {'ALIGNED' if report.aligned else 'DIVERGENT'} "
                 f"({len(outside)} of {len(report.rows)} entries outside tolerance)")
    return "\n".join(lines)
