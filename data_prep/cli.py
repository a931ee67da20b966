"""The ``python -m data_prep`` command line (same plug-in design as ``kit``: see :mod:`kit.core.commands`)."""

from __future__ import annotations

from typing import Sequence

from kit.core.commands import run_commands

COMMANDS = {
    "imagenet": ("data_prep.imagenet", "build train/ and val/ class folders from the official ImageNet archives"),
    "verify": ("data_prep.verify", "check image counts per class and decode every file"),
    "subset": ("data_prep.subset", "N classes x M images per class, deterministic by seed (hard links)"),
    "digits": ("data_prep.digits", "write the embedded digits dataset in the ImageNet layout"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_commands(COMMANDS, "python -m data_prep", "Prepare image-classification data for vitkit.", argv)
