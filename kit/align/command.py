"""``kit align dump`` and ``kit align compare``: the command line of :mod:`kit.align`.

``compare`` only reads two dumps, and never imports torch or timm (nor does either ``--help``): the tools it uses
(:mod:`kit.align.dumpio`, :mod:`kit.align.compare`, :mod:`kit.align.render`) read them with numpy. ``dump`` runs
a training step and imports torch, when it runs.

Exit codes of ``compare``: 0 aligned, 1 divergent, 2 bad input (a missing or damaged dump file, dumps of
different models or shapes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from kit.align.dumpio import FULL_TENSORS_MAX
from kit.core.errors import UserError
from kit.device.choices import AMP_CHOICES

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
    sub.required = True
    d = sub.add_parser("dump", help="record one training step's module outputs and gradients",
                       description="Record one deterministic training step: every module's output, every gradient.")
    d.add_argument("--model", required=True, help="a kit model name (kit models)")
    d.add_argument("--checkpoint", help="a kit run's last.pth/best.pth or a state dict (default: init by --seed)")
    d.add_argument("--data", required=True, help="dataset folder; the first --batch-size images of its val split")
    d.add_argument("--out", required=True, help="the dump folder to write (replaced atomically)")
    d.add_argument("--device", default="auto", help="auto, sdaa, cuda, mps or cpu (default: auto)")
    d.add_argument("--amp", nargs="?", const="auto", default="none", choices=AMP_CHOICES,
                   help="autocast: bare --amp = auto (the device's choice); bf16 on a CPU is forced even if slow")
    d.add_argument("--batch-size", type=int, default=8, help="images in the batch (default: 8)")
    d.add_argument("--seed", type=int, default=0, help="seeds the initialisation when no checkpoint (default: 0)")
    d.add_argument("--full-tensors-max", type=int, default=FULL_TENSORS_MAX, metavar="N",
                   help=f"store full tensors of up to N elements, 0 for statistics only (default: {FULL_TENSORS_MAX})")
    d.add_argument("--img-size", type=int, help="input size (default: the recipe's, else the model's)")
    d.add_argument("--recipe", help="preprocessing from this recipe (default: the registered recipe of --model)")
    c = sub.add_parser("compare", help="compare two dumps; exit 0 aligned, 1 divergent, 2 bad input",
                       description="Compare a candidate dump with a reference dump, module by module.")
    c.add_argument("reference", help="the reference dump folder (e.g. CPU or CUDA, fp32)")
    c.add_argument("candidate", help="the candidate dump folder (e.g. the port)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.add_argument("--plot", metavar="F.png", help="save the error-per-module figure")
    c.add_argument("--all", action="store_true", help="list every entry, not only those outside tolerance")


def _run_dump(args: argparse.Namespace) -> int:
    from kit.align.dump import dump
    from kit.align.values import read_number

    if args.batch_size < 1 or args.full_tensors_max < 0:
        raise UserError("--batch-size must be at least 1 and --full-tensors-max at least 0")
    started = time.perf_counter()
    index = dump(args.model, args.data, args.out, checkpoint=args.checkpoint, device=args.device, amp=args.amp,
                 batch_size=args.batch_size, seed=args.seed, full_tensors_max=args.full_tensors_max,
                 img_size=args.img_size, recipe=args.recipe)
    saved = sum(e["saved"] for e in index["entries"])
    print(f"wrote {args.out}: {index['model']}, {len(index['entries'])} entries ({saved} full tensors), "
          f"{index['config']['derived']['precision']}, loss {read_number(index['loss']):.6g}, "
          f"{time.perf_counter() - started:.1f} s")
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from kit.align.compare import compare_dumps
    from kit.align.render import render_text

    report = compare_dumps(args.reference, args.candidate)
    if args.plot:
        from kit.align.plot import plot_errors

        plot_errors(report, args.plot)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1, allow_nan=False)
        print()
    else:
        print(render_text(report, all_rows=args.all))
    return 0 if report.aligned else 1


def run(args: argparse.Namespace) -> int:
    return _run_dump(args) if args.action == "dump" else _run_compare(args)
