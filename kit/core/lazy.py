"""PEP 562 re-exports: a package's public names, imported from their module on first use.

Why: a package's ``__init__`` is imported before any of its modules, so one that imported its modules
eagerly would make ``kit compare --help`` (which reads text logs) pay for torch and timm. With
:func:`lazy_exports` the package still has one public face (``from kit.device import resolve``) and
the cost is paid only by the caller that uses the name.
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to its module (relative).

    A name that is not exported but is a module of the package (``kit.device.timing``) is imported too,
    so attribute access reaches the package's modules as it would after ``import package.module``.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is not None:
            return getattr(importlib.import_module(f"{package}.{module}"), name)
        if not name.startswith("__"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list:
        return sorted(set(exports) | set(importlib.import_module(package).__dict__))

    return __getattr__, __dir__
