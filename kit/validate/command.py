"""``kit compare REFERENCE CANDIDATE [--reference-runs RUN ...]``: exit 0 pass, 1 fail, 2 bad input.

It reads text logs only, so neither ``kit compare`` nor its ``--help`` imports torch or timm; scipy loads only
with ``--reference-runs`` and matplotlib only with ``--plot``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from kit.validate.compare import compare_curves
from kit.validate.configdiff import config_differences, run_folder_config
from kit.validate.logformats import READERS, read_curve
from kit.validate.report import format_report

__all__ = ["add_arguments", "run"]


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
        from kit.validate.plot import plot_comparison

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
