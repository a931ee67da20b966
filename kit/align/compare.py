"""``kit align compare``: two dumps of the same model, entry by entry, in execution order.

Entries are matched by kind and name (module names as ``model.named_modules()`` gives them, the root
as ``""``; parameters as ``model.named_parameters()``), in the reference's order: the input batch,
every module's output, the loss, then every gradient in the order the backward pass produced it.
Dumps of models whose module trees or parameter lists differ, or whose tensors differ in shape, are
refused (a :class:`~kit.core.errors.UserError`, exit 2): matching them by position would compare unlike
things. An entry present on one side only (a module the other side's code path did not call) is
listed, not judged: a port that takes another path to the same numbers is aligned.

Per entry: ``max_abs``, ``max_rel`` and ``cosine`` (:mod:`kit.align.tolerance`), from the full tensors
when both dumps stored them (``basis: "tensors"``). Otherwise they come from the statistics
(``basis: "statistics"``): the largest difference among mean, std, min, max and RMS (norm / sqrt(n)),
each of which is at most the true max |c - r|, so ``max_abs`` and ``max_rel`` are lower bounds and a
statistics-only entry flagged outside tolerance really is; there is no sound cosine from summary
statistics, so it is ``None``. NaN and infinities are compared by position (tensors) or by count
(statistics); the errors are taken over the elements finite on both sides.

The report names the first forward entry (input, module output or loss) and the first gradient
outside tolerance, and the first entry where NaN or Inf appeared on either side.

It reads dumps with numpy only (:meth:`kit.align.dumpio.Dump.tensor`): ``kit align compare`` imports no torch,
so it runs as fast on a login node as beside the card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from kit.align.dumpio import Dump, read_dump
from kit.align.tolerance import NOISE, Tolerance, precision, tolerance_for
from kit.align.values import json_number, nonfinite_count, read_number
from kit.core.errors import UserError
from kit.validate.configdiff import config_differences

FORWARD_KINDS = ("input", "forward", "loss")

__all__ = [
    "FORWARD_KINDS",
    "Row",
    "tensor_errors",
    "stats_errors",
    "magnitude",
    "gradient_scales",
    "compare_entry",
    "Report",
    "compare_dumps",
]


@dataclass
class Row:
    """One entry compared."""

    kind: str
    name: str
    max_abs: float
    max_rel: float
    cosine: Optional[float]
    basis: str  # "tensors" or "statistics"
    tolerance: Tolerance
    nonfinite: tuple[int, int]  # NaN + Inf elements in the reference, in the candidate
    same_nonfinite: bool
    cosine_judged: bool = True  # False for a gradient whose direction is rounding noise (kit.align.tolerance)

    @property
    def within(self) -> bool:
        return self.same_nonfinite and self.tolerance.accepts(self.max_rel, self.cosine if self.cosine_judged else None)

    def to_json(self) -> dict:
        cosine = None if self.cosine is None else json_number(self.cosine)
        return {"name": self.name, "kind": self.kind, "max_abs": json_number(self.max_abs),
                "max_rel": json_number(self.max_rel), "cosine": cosine,
                "within": self.within, "basis": self.basis, "precision": self.tolerance.precision,
                "nonfinite": {"reference": self.nonfinite[0], "candidate": self.nonfinite[1]}}


def _ratio(error: float, scale: float) -> float:
    if scale > 0:
        return error / scale
    return 0.0 if error == 0 else math.inf


def _nonfinite_pattern(x: np.ndarray) -> np.ndarray:
    return np.isnan(x).astype(np.int8) + 2 * (x == math.inf).astype(np.int8) + 3 * (x == -math.inf).astype(np.int8)


def tensor_errors(ref, cand) -> tuple[float, float, Optional[float], bool]:
    """``(max_abs, max |ref|, cosine, same NaN/Inf positions)`` of two arrays (anything numpy reads: a dump's
    tensors, a CPU torch tensor), in float64, over the finite elements."""
    r, c = np.asarray(ref, dtype=np.float64).ravel(), np.asarray(cand, dtype=np.float64).ravel()
    finite = np.isfinite(r) & np.isfinite(c)
    same = True
    if not finite.all():
        same = np.array_equal(_nonfinite_pattern(r), _nonfinite_pattern(c))
        r, c = r[finite], c[finite]
    if r.size == 0:
        return 0.0, 0.0, 1.0, same
    max_abs, scale = float(np.abs(c - r).max()), float(np.abs(r).max())
    if max_abs == 0:
        return 0.0, scale, 1.0, same
    r_norm, c_norm = float(np.linalg.norm(r)), float(np.linalg.norm(c))
    norms = r_norm * c_norm
    cosine = max(-1.0, min(1.0, float(r @ c) / norms)) if norms > 0 else float(r_norm == c_norm)
    return max_abs, scale, cosine, same


def stats_errors(ref: dict, cand: dict) -> tuple[float, float, Optional[float], bool]:
    """``(max_abs, max |ref|, None, same NaN/Inf counts)`` from two entries' statistics: ``max_abs`` is a lower
    bound, and there is no cosine (see the module doc)."""
    same = ref["nan"] == cand["nan"] and ref["inf"] == cand["inf"]
    root_n = math.sqrt(max(int(ref["numel"]), 1))
    pairs = [(read_number(ref[k]), read_number(cand[k])) for k in ("mean", "std", "min", "max")]
    pairs.append((read_number(ref["norm"]) / root_n, read_number(cand["norm"]) / root_n))
    diffs = [abs(a - b) for a, b in pairs]
    max_abs = math.nan if any(math.isnan(d) for d in diffs) else max(diffs)
    return max_abs, magnitude(ref), None, same


def magnitude(stats: dict) -> float:
    """max |x| of a tensor from its statistics (0 where they are not finite)."""
    value = max(abs(read_number(stats["min"])), abs(read_number(stats["max"])))
    return value if math.isfinite(value) else 0.0


def gradient_scales(entries: list[dict]) -> dict[str, float]:
    """Module name -> the largest gradient element among that module's parameters (see the module doc)."""
    scales: dict[str, float] = {}
    for e in entries:
        if e["kind"] == "grad":
            module = e["name"].rpartition(".")[0]
            scales[module] = max(scales.get(module, 0.0), magnitude(e["stats"]))
    return scales


def _check_comparable(ref: Dump, cand: Dump) -> None:
    for key, what in (("module_tree", "module tree"), ("parameters", "parameter list")):
        a, b = ref.index[key], cand.index[key]
        if a != b:
            i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            shown = f"{a[i] if i < len(a) else '(end)'!r} vs {b[i] if i < len(b) else '(end)'!r}"
            raise UserError(f"{cand.path}: its {what} differs from {ref.path}'s ({ref.index['model']}: {len(a)}, "
                            f"{cand.index['model']}: {len(b)}; first difference at #{i}: {shown}); "
                            "compare dumps of the same model")
    shapes = {e["key"]: e["stats"]["shape"] for e in cand.entries}
    for e in ref.entries:
        if e["key"] in shapes and e["stats"]["shape"] != shapes[e["key"]]:
            raise UserError(f"{cand.path}: {e['key']} has shape {shapes[e['key']]}, {ref.path} has "
                            f"{e['stats']['shape']}; dumps of different batch or image sizes cannot be compared")


def compare_entry(ref: Dump, cand: Dump, e_ref: dict, e_cand: dict, floor: float = 0.0) -> Row:
    """One entry of both dumps; ``floor``: the least scale its error is measured against (a gradient's module's)."""
    basis = "tensors" if e_ref.get("saved") and e_cand.get("saved") else "statistics"
    if basis == "tensors":
        max_abs, scale, cosine, same = tensor_errors(ref.tensor(e_ref["key"]), cand.tensor(e_cand["key"]))
    else:
        max_abs, scale, cosine, same = stats_errors(e_ref["stats"], e_cand["stats"])
    tolerance = tolerance_for(precision(ref.index["amp"].get("dtype"), e_ref["stats"]["dtype"]),
                              precision(cand.index["amp"].get("dtype"), e_cand["stats"]["dtype"]),
                              gradient=e_ref["kind"] == "grad")
    nonfinite = (nonfinite_count(e_ref["stats"]), nonfinite_count(e_cand["stats"]))
    max_rel = _ratio(max_abs, max(scale, floor))
    return Row(e_ref["kind"], e_ref["name"], max_abs, max_rel, cosine, basis, tolerance, nonfinite, same,
               cosine_judged=scale >= NOISE * floor)


@dataclass
class Report:
    """The comparison of a candidate dump with a reference dump."""

    reference: Dump
    candidate: Dump
    rows: list[Row]
    differences: list[str] = field(default_factory=list)
    only_reference: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)

    def _first(self, kinds: tuple[str, ...]) -> Optional[Row]:
        return next((r for r in self.rows if r.kind in kinds and not r.within), None)

    @property
    def first_forward(self) -> Optional[Row]:
        return self._first(FORWARD_KINDS)

    @property
    def first_gradient(self) -> Optional[Row]:
        return self._first(("grad",))

    @property
    def first_nonfinite(self) -> Optional[Row]:
        return next((r for r in self.rows if any(r.nonfinite)), None)

    @property
    def aligned(self) -> bool:
        return all(r.within for r in self.rows)

    def to_json(self) -> dict:
        def name(row: Optional[Row]) -> Optional[str]:
            return None if row is None else row.name

        return {"aligned": self.aligned, "first_forward": name(self.first_forward),
                "first_gradient": name(self.first_gradient), "first_nonfinite": name(self.first_nonfinite),
                "modules": [r.to_json() for r in self.rows], "config_differences": self.differences,
                "only_in_reference": self.only_reference, "only_in_candidate": self.only_candidate,
                "reference": str(self.reference.path), "candidate": str(self.candidate.path)}


def compare_dumps(reference: str | Path | Dump, candidate: str | Path | Dump) -> Report:
    """Compare two dump folders (or :class:`Dump` objects already read)."""
    ref = reference if isinstance(reference, Dump) else read_dump(reference)
    cand = candidate if isinstance(candidate, Dump) else read_dump(candidate)
    _check_comparable(ref, cand)
    by_key = {e["key"]: e for e in cand.entries}
    scales = gradient_scales(ref.entries)
    rows = [compare_entry(ref, cand, e, by_key[e["key"]], scales.get(e["name"].rpartition(".")[0], 0.0)
                          if e["kind"] == "grad" else 0.0) for e in ref.entries if e["key"] in by_key]
    ref_keys = {e["key"] for e in ref.entries}
    return Report(ref, cand, rows, config_differences(ref.index["config"], cand.index["config"]),
                  [e["key"] for e in ref.entries if e["key"] not in by_key],
                  [e["key"] for e in cand.entries if e["key"] not in ref_keys])
