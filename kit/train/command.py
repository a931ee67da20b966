"""``kit train``: the command line over :func:`kit.train.loop.train`."""

from __future__ import annotations

import argparse

from kit.config import flags, recipes
from kit.core.errors import UserError
from kit.device import shim as device
from kit.train import loop
from kit.train.distributed import dist_info, distributed

__all__ = ["add_arguments", "config_from_args", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(recipes.list_recipes())
    parser.add_argument("--recipe", metavar="NAME", help=f"a recipe ({names}) or a JSON recipe file")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    o = parser.add_argument_group("overrides (win over the recipe)")
    flags.add_flags(o)  # --data ... --no-progress, declared once in kit.config.flags
    o.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any recipe value, e.g. optimizer.weight_decay=0.1",
    )


def config_from_args(args: argparse.Namespace) -> dict:
    """The recipe the command line asks for, resolved and checked (:func:`kit.config.recipes.resolve`)."""
    if not args.recipe:
        raise UserError(f"--recipe is required; one of: {', '.join(recipes.list_recipes())} (or a JSON recipe file)")
    overrides = {flag.name: getattr(args, flag.name, None) for flag in flags.FLAGS}
    return recipes.resolve(args.recipe, overrides, args.set)


def run(args: argparse.Namespace) -> int:
    """``kit train``: resolve the recipe and the device once each, join the process group, train, sum up."""
    if args.list:
        width = max(len(n) for n in recipes.list_recipes())
        for name in recipes.list_recipes():
            print(f"{name:<{width}}  {recipes.describe(name)}")
        return 0
    cfg = config_from_args(args)  # resolved and checked, once
    with distributed(device.resolve(cfg["run"]["device"])) as dev:  # the device, resolved once
        rank = dist_info()[0]
        result = loop.train(cfg, resolved=True, dev=dev)
    if rank == 0:
        acc = (
            f"val acc1 {result.val_acc1:.2f} % (best {result.best_acc1:.2f} %)"
            if result.val_acc1 is not None
            else "no validation"
        )
        print(
            f"done ({result.stopped}): {result.steps} steps, {acc}, last loss {result.last_loss}, "
            f"{result.train_seconds:.1f} s, {result.images_per_s:.1f} images/s; run folder {result.out_dir}"
        )
    return 0
