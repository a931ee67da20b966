"""Run one function over many items in worker processes, stopping cleanly on Ctrl-C or an error.

Processes rather than threads because the work (tar parsing, JPEG decoding) is mostly Python and
C code that holds the GIL. With ``workers <= 1`` everything runs in this process, which is what
you want on a spinning disk (one reader, no seeking) and in tests that patch the module.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """The CPUs this process may use (respects taskset/cgroup affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive pieces of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def imap_unordered(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` as each finishes; ``fn`` must be a module-level function.

    The first exception from ``fn`` is raised here; it, Ctrl-C, or the caller leaving the loop
    cancels the work not yet started and waits for the running items to end.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield item, fn(item)
        return
    pool = ProcessPoolExecutor(max_workers=min(workers, len(items)))
    try:
        futures = {pool.submit(fn, item): item for item in items}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
