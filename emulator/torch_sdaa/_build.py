"""Build the card's C++ extension once per torch and Python, offline, into a cache outside any clone.

The extension is compiled with torch's own ``torch.utils.cpp_extension`` against the headers of the torch
that imports it, so one source serves torch 2.2 (the seeds' SDAA image), 2.7 (TecoPyTorch) and the kit's
current torch. The cache key holds the torch version, the Python version and a hash of the source, so a
changed source or another torch builds anew and nothing stale is ever loaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

__all__ = ["SOURCE", "cache_dir", "load", "BuildError"]

SOURCE = Path(__file__).with_name("csrc") / "card.cpp"


class BuildError(ImportError):
    """The extension cannot be built here (no compiler, or the compiler failed): one line says why."""


def cache_dir() -> Path:
    """Where the built extension for this torch and Python lives (``SDAA_EMULATOR_CACHE`` overrides the root)."""
    import torch

    root = os.environ.get("SDAA_EMULATOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vitkit", "sdaa-emulator")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    tag = f"torch{torch.__version__.replace('+', '_')}-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"
    return Path(root) / tag


def _compiler() -> str:
    cxx = os.environ.get("CXX") or "c++"
    found = shutil.which(cxx) or shutil.which("g++")
    if not found:
        raise BuildError(f"the emulated SDAA card is a C++ extension built once per torch, and no C++ compiler was "
                         f"found ({cxx!r} or g++ on PATH): install one (Debian/Ubuntu: apt-get install g++)")
    return found


def load(verbose: bool = False):
    """Import the built extension, building it first if this torch has none yet.

    A built one is imported directly: importing ``torch.utils.cpp_extension`` costs time and, on a CUDA build
    of torch without a GPU, logs a warning a learner would see on every import.
    """
    build = cache_dir()
    build.mkdir(parents=True, exist_ok=True)
    name = "torch_sdaa_card"
    built = build / f"{name}.so"
    if built.exists() and not verbose:
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, built)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    _compiler()
    from torch.utils import cpp_extension

    if not built.exists():
        print(f"torch_sdaa (emulated): building the card for torch {_torch_version()} once, into {build} "
              "(about a minute)", file=sys.stderr, flush=True)
    try:
        return cpp_extension.load(name=name, sources=[str(SOURCE)], build_directory=str(build),
                                  extra_cflags=["-O2"], verbose=verbose)
    except (RuntimeError, OSError, ImportError) as e:  # compiler or ninja failure: say it in one line
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        last = next((line for line in lines if "error:" in line), lines[-1] if lines else repr(e))
        raise BuildError(f"the emulated SDAA card did not build for torch {_torch_version()} in {build}: {last} "
                         "(rerun `python -m torch_sdaa.build --verbose` to see the compiler's output)") from None


def _torch_version() -> str:
    import torch

    return torch.__version__
