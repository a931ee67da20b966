"""The emulator never stands in for Tecorigin's torch_sdaa: where a real one is installed it refuses to load.

A real torch_sdaa is recognised by what it ships that the emulator does not: its native libraries
(``torch_sdaa/lib``) or a ``torch_sdaa`` package elsewhere on ``sys.path``, or an installed distribution
named torch_sdaa / torch-sdaa.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
from pathlib import Path
from typing import Optional

__all__ = ["REFUSAL", "RealPluginPresent", "real_plugin", "refuse_real_plugin"]

HERE = Path(__file__).resolve().parent
REFUSAL = ("a real torch_sdaa is installed at {where}; the emulated card never stands in for it "
           "(uninstall the emulator: pip uninstall vitkit-sdaa-emulator)")


class RealPluginPresent(ImportError):
    """Tecorigin's torch_sdaa is installed: the emulator will not load beside it."""


def real_plugin(paths: Optional[list] = None) -> Optional[str]:
    """Where a real torch_sdaa lives, or None when only the emulator is here."""
    for entry in sys.path if paths is None else paths:
        candidate = Path(entry or ".") / "torch_sdaa"
        try:
            if candidate.resolve() == HERE or not candidate.is_dir() or (candidate / "_guard.py").exists():
                continue  # this copy, nothing, or another copy of the emulator
        except OSError:
            continue
        if (candidate / "__init__.py").exists() or (candidate / "lib").is_dir():
            return str(candidate)
    if (HERE / "lib").is_dir():  # the emulator's folder holds a vendor's libraries: installed over it
        return str(HERE / "lib")
    for name in ("torch_sdaa", "torch-sdaa"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        return f"{dist.locate_file('')} (distribution {name} {dist.version})"
    return None


def refuse_real_plugin() -> None:
    where = None if os.environ.get("SDAA_EMULATOR_IGNORE_REAL") == "1" else real_plugin()
    if where:
        raise RealPluginPresent(REFUSAL.format(where=where))


if __name__ == "__main__":  # `make setup-emulator` asks before installing, without importing (and building) the card
    found = real_plugin()
    if found:
        print(f"make setup-emulator: {REFUSAL.format(where=found)}", file=sys.stderr)
        sys.exit(2)
