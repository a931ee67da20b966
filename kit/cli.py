"""The ``kit`` command line: the table of sub-commands (the runner is :mod:`kit.core.commands`).

Add a line to :data:`COMMANDS` to plug a new sub-command in; its module provides ``add_arguments(parser)``
and ``run(args) -> int``, and is imported only when that command runs.
"""

from __future__ import annotations

import sys
from typing import Sequence

from kit.core.commands import build_parser, run_commands

__all__ = ["COMMANDS", "build_parser", "main"]

#: name -> (module, one-line help). Add a line here to plug a new sub-command in.
COMMANDS: dict[str, tuple[str, str]] = {
    "devices": ("kit.device.command", "show the devices this machine has and which one 'auto' picks"),
    "models": ("kit.models", "list the registered HiViT and CaiT models with their sizes"),
    "train": ("kit.train.command", "train a model from a recipe (works under torchrun for DDP)"),
    "compare": ("kit.validate.command", "compare a candidate loss curve with a reference run"),
    "anatomy": ("kit.anatomy.command", "print a model's parameters, FLOPs and shapes per stage"),
    "align": ("kit.align.command", "find the first module where two devices' numbers diverge (dump, compare)"),
    "workshop": ("kit.workshop.command", "run the workshop notebooks headless with papermill"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_commands(
        COMMANDS,
        "kit",
        "vitkit: train HiViT and CaiT on SDAA, CUDA or CPU and validate a port by its loss curve.",
        argv,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
