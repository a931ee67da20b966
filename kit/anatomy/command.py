"""``kit anatomy MODEL``: the report of :mod:`kit.anatomy.report` for a kit model, as tables or JSON."""

from __future__ import annotations

import argparse
import json

from kit import models
from kit.anatomy.forward import example_input
from kit.anatomy.report import anatomy, format_report
from kit.core import seeding
from kit.core.errors import UserError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a kit model name, e.g. cait_workshop_32, hivit_workshop_32, cait_s24_224")
    parser.add_argument("--img-size", type=int, default=None, help="input size (default: the model's)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes (default: the model's)")
    parser.add_argument("--checkpoint", default=None,
                        help="load these weights first (any layout kit.models.weights reads)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random init and the random input")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    if args.img_size is not None and args.img_size <= 0:
        raise UserError(f"--img-size must be positive, got {args.img_size}")
    if args.num_classes is not None and args.num_classes < 0:
        raise UserError(f"--num-classes must be >= 0, got {args.num_classes}")
    seeding.seed_all(args.seed)
    model = models.create(args.model, img_size=args.img_size, num_classes=args.num_classes,
                          checkpoint=args.checkpoint).eval()
    report = anatomy(model, example_input(model, args.img_size))
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_report(report))
    return 0
