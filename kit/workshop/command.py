"""``kit workshop``: run the notebooks headless (:mod:`kit.workshop.runner`), or a sweep of them
(:mod:`kit.workshop.sweep`); exit 0 done, 1 a notebook failed, 2 bad input, 130 interrupted."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kit.core.errors import UserError
from kit.workshop.runner import (
    WorkshopFailed,
    WorkshopInterrupted,
    check_parameters,
    declared_parameters,
    parse_parameter,
    run_workshop,
    summary_markdown,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/workshop", help="run folder to create (default runs/workshop)")
    parser.add_argument("--device", default="auto", help="auto, sdaa, sdaa:N, cuda, cuda:N, mps or cpu")
    parser.add_argument("--quick", action="store_true", help="a few training steps only (for CI and a first look)")
    parser.add_argument("--data", default=None, help="where to write/read the embedded dataset (default: data/digits)")
    parser.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a notebook parameter, as papermill -p does (repeatable): -p epochs 5 -p amp true")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="run the workshop once per value (repeatable: the grid) into OUT/sweep/, one table "
                             "OUT/sweep.csv (see kit.workshop.sweep)")
    parser.add_argument("--jobs", type=int, default=1, help="with --sweep: how many sets run at once (default 1)")
    parser.add_argument("--metric", default="val_acc1",
                        help="with --sweep: the summary.json number the report plots (default val_acc1, per model)")


def run(args: argparse.Namespace) -> int:
    from kit.device.shim import resolve

    parameters = {name: parse_parameter(value) for name, value in args.parameters}
    check_parameters(parameters, declared_parameters())  # before anything runs: exit 2 naming the name
    if args.jobs != 1 and not args.sweep:
        raise UserError("--jobs: only with --sweep (one workshop runs its notebooks in order)")
    resolve(str(parameters.get("device", args.device)))  # fail early, with the shim's message, on a missing device
    if args.sweep:
        from kit.workshop import sweep

        return sweep.run(args, parameters)
    try:
        summary = run_workshop(args.out, device=args.device, quick=args.quick, data=args.data, parameters=parameters)
    except WorkshopFailed as e:
        print(f"kit workshop: {e}")
        return 1
    except WorkshopInterrupted as e:
        print(f"kit workshop: {e}", file=sys.stderr)
        return 130
    print(summary_markdown(summary, Path(args.out)))
    print(f"Results: {Path(args.out) / 'summary.md'}; the report to open in a browser: {Path(args.out) / 'index.html'}")
    return 0  # a failed loss-curve verdict is a result of the workshop, reported above, not an error
