"""Timing on the kit's devices: matmul FLOP/s and the CPU's bf16/fp32 speed ratio.

Everything here goes through ``torch.utils.benchmark.Timer`` rather than a loop around
``time.perf_counter``, because the Timer already does most of what such loops get wrong: it times blocks of
calls long enough that the clock's own cost disappears (``blocked_autorange``), and it fixes the thread count
while it measures. Three things are added or replaced, in :func:`measure`:

* a warm-up: the Timer's only warm-up is the search for its block size, which stops after the *first* call
  when that call takes long -- and a first call is the slowest (the thread pool starts, kernels are chosen or
  compiled, the output's memory is touched for the first time). On this project's 2-core CPU the first 128x128
  fp32 matmuls took 30 ms each, the later ones 27 us: the block size was then chosen from a cold call, and a
  cold phase that outlasts ``min_run_time`` is the whole measurement. So :func:`measure` first runs the
  statement for ``warmup`` seconds;

* threads: the Timer runs on one thread unless told otherwise, while the kit trains on torch's current
  thread count; the measurements here use that count, so they describe the runs they are compared with;
* the clock: which accelerators the Timer's own clock waits for depends on the torch version; here the
  clock waits on the kit :class:`~kit.device.shim.Device` given (SDAA, CUDA and MPS alike), so a measurement
  counts the work the card did, not only the time it took to queue it.

Who uses what: the device shim asks :func:`measure_cpu_bf16_ratio` whether ``--amp`` would pay on a CPU
without native bf16; notebook 0 and ``bench/bench_train.py`` measure the matmul peak that model-FLOPs
utilisation is reported against; :func:`kit.anatomy.speed.masked_forward_times` times HiViT's forward on
kept units only with :func:`measure`.
"""

from __future__ import annotations

import functools
import timeit
from typing import TYPE_CHECKING, Callable, Optional, Protocol

import torch

if TYPE_CHECKING:
    from torch.utils.benchmark import Measurement


class Device(Protocol):
    """What timing needs of a device: a kit :class:`~kit.device.shim.Device` (which imports this module, so it
    is named by what it does, not imported)."""

    torch_device: torch.device

    def synchronize(self) -> None: ...

__all__ = ["warm_up", "measure", "measure_matmul_flops", "measure_cpu_bf16_ratio"]


def _clock(device: Optional["Device"]) -> Callable[[], float]:
    """The Timer's clock: the wall clock, read after ``device`` has finished its queued work."""
    if device is None:
        return timeit.default_timer

    def clock() -> float:
        device.synchronize()
        return timeit.default_timer()

    return clock


def warm_up(fn: Callable[[], object], device: Optional["Device"] = None, seconds: float = 0.1) -> int:
    """Call ``fn()`` until ``seconds`` have passed on ``device``'s clock (at least once); return the calls made."""
    clock = _clock(device)
    start, calls = clock(), 0
    while True:
        fn()
        calls += 1
        if clock() - start >= seconds:
            return calls


def _benchmark():
    """``torch.utils.benchmark``, imported on first use and without torch's note about CUDA extensions.

    Importing it imports torch's C++-extension builder, which on a machine with a CUDA toolkit but no usable
    GPU (PyPI's CUDA build of torch on most Linux laptops) logs ``No CUDA runtime is found, using
    CUDA_HOME=...`` through the ``torch.utils.cpp_extension`` logger (torch 2.2 prints it to stderr instead). The
    kit compiles nothing, so the note only alarms: a notebook shows it as a pink stderr box. The logger is
    quietened, and stderr set aside, for the import only.
    """
    import contextlib
    import io
    import logging
    import sys

    if "torch.utils.benchmark" not in sys.modules:
        logger = logging.getLogger("torch.utils.cpp_extension")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                import torch.utils.benchmark  # noqa: F401
        finally:
            logger.setLevel(level)
    return sys.modules["torch.utils.benchmark"]


def measure(fn: Callable[[], object], device: Optional["Device"] = None, min_run_time: float = 0.2,
            warmup: float = 0.1) -> Measurement:
    """Time ``fn()`` with ``Timer.blocked_autorange``: ``warmup`` seconds of calls (:func:`warm_up`), then blocks
    of calls for at least ``min_run_time`` seconds. ``device`` is the kit Device the work runs on (None: the
    CPU); the result's ``times`` are seconds per call, one per block, and ``median`` their median."""
    benchmark = _benchmark()
    threads = torch.get_num_threads()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, timer=_clock(device), num_threads=threads)
    if warmup > 0:
        warm_up(fn, device, warmup)  # on the thread count the Timer measures with: torch's current one
    return timer.blocked_autorange(min_run_time=min_run_time)


def measure_matmul_flops(device: Optional["Device"] = None, dtype: torch.dtype = torch.float32, size: int = 1024,
                         min_run_time: float = 0.2) -> float:
    """FLOP/s of a ``size`` x ``size`` matmul on ``device`` (a kit Device; None: the CPU) in ``dtype``.

    This is the machine's practical peak that model-FLOPs utilisation is measured against, and the quick
    speed check of notebook 0: it is taken from the fastest block, not the median, because a peak is what
    the device does when nothing else gets in its way. (2·n³ FLOPs per matmul.)
    """
    where = device.torch_device if device is not None else torch.device("cpu")
    a = torch.randn(size, size, device=where).to(dtype)
    b = torch.randn(size, size, device=where).to(dtype)
    return 2.0 * size**3 / min(measure(lambda: a @ b, device, min_run_time).times)


@functools.lru_cache(maxsize=None)
def measure_cpu_bf16_ratio(size: int = 256, min_run_time: float = 0.1) -> float:
    """Speed of a bf16 matmul relative to fp32 on this CPU (1.0 = as fast; 0.01 = 100x slower).

    Measured once per process: it is what decides whether ``--amp`` pays on a CPU that does not
    advertise bf16 in hardware, and the answer does not change while the process runs.
    """
    bf16 = measure_matmul_flops(None, torch.bfloat16, size, min_run_time)
    return bf16 / measure_matmul_flops(None, torch.float32, size, min_run_time)
