"""``kit train``: the command line over :func:`kit.train.loop.train`."""

from __future__ import annotations

import argparse

from kit.config import recipes
from kit.core.errors import UserError
from kit.device import shim as device
from kit.device.choices import AMP_CHOICES
from kit.train import loop
from kit.train.distributed import dist_info, distributed

__all__ = ["add_arguments", "config_from_args", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(recipes.list_recipes())
    parser.add_argument("--recipe", metavar="NAME", help=f"a recipe ({names}) or a JSON recipe file")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    o = parser.add_argument_group("overrides (win over the recipe)")
    o.add_argument("--data", metavar="DIR", help="dataset folder (train/, val/, optional meta/*.txt)")
    o.add_argument("--out", metavar="DIR", help="run folder (default runs/<recipe>)")
    o.add_argument("--epochs", type=int, metavar="N")
    o.add_argument(
        "--batch-size", type=int, metavar="N", help="per process; the global batch is this x the number of processes"
    )
    o.add_argument("--lr", type=float, help="base learning rate, scaled by global batch / optimizer.lr_base_batch")
    o.add_argument(
        "--unscale-lr", action="store_true", help="use --lr (or the recipe's lr) as is, without batch scaling"
    )
    o.add_argument("--device", metavar="DEV", help="auto, cpu, cuda[:N], sdaa[:N], mps (default auto)")
    o.add_argument(
        "--amp",
        nargs="?",
        const="auto",
        choices=AMP_CHOICES,
        metavar="MODE",
        help="mixed precision: none, auto, fp16 or bf16 (bare --amp = auto)",
    )
    o.add_argument("--seed", type=int, metavar="N")
    o.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps (ModelZoo alignment: 100)")
    o.add_argument(
        "--max-epochs",
        type=int,
        metavar="N",
        help="stop (and validate) after N epochs, keeping the schedule of --epochs",
    )
    o.add_argument("--save-every", type=int, metavar="K", help="also write last.pth every K steps")
    o.add_argument("--resume", nargs="?", const=True, metavar="CKPT", help="continue from <out>/last.pth (or CKPT)")
    o.add_argument("--overwrite", action="store_const", const=True, help="start afresh in an --out that holds a run")
    o.add_argument("--workers", type=int, metavar="N", help="data-loading worker processes")
    o.add_argument("--compile", action="store_const", const=True, help="torch.compile the model")
    o.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None, help="model EMA on/off")
    o.add_argument("--skip-corrupt", action="store_const", const=True, help="skip and count unreadable images")
    o.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bar")
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
    overrides = {flag: getattr(args, flag, None) for flag in recipes.FLAG_KEYS}
    overrides["unscale_lr"] = args.unscale_lr
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
