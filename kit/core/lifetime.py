"""Nothing a workshop starts outlives it: kernels, and every process a notebook cell starts.

Why this is needed: jupyter_client starts each kernel in a session of its own, so a ``kit workshop`` killed
with SIGKILL to its process group (or a closed terminal) does not reach the kernel; ipykernel notices its
parent is gone within a second and exits, but what a cell started (notebook 4's resume exercise runs
``kit train`` in a subprocess) is orphaned and goes on training the whole recipe for minutes, holding its run
folder, while the rerun deletes and rewrites that folder and runs 2-4x slower beside it.

Two guards, each enough for its case:

* :func:`popen` - a notebook's own subprocess dies with its kernel, by the kernel's death signal: Linux's
  ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` set in the child before it runs (SIGKILL included, in JupyterLab as
  under ``kit workshop``; elsewhere it is a plain ``subprocess.Popen``).
* :class:`GroupWatchdog` - the runner owns its kernels' process groups (a kernel's children are in its
  group unless they leave it). A small watchdog process, in a session of its own so that a signal to the
  runner's group spares it, holds a pipe from the runner: the runner tells it each kernel's group as it
  starts (:func:`tied_kernel_manager`) and when the runner is gone - however it ends, the pipe closes -
  the watchdog SIGKILLs every group still registered. The runner itself kills a notebook's group when the
  notebook ends (:meth:`GroupWatchdog.release`), so nothing a cell left running survives into the next one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Iterator, Optional

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where it cannot (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    return True


def settle_threads_at_exit(seconds: float = 0.05) -> None:
    """At the interpreter's exit, give up the GIL for ``seconds`` first (an ``atexit`` handler).

    Why: a short torchrun script (a few steps, gloo, two ranks) ended with "terminate called without an active
    exception" (SIGABRT) after its work was done in 4 runs of 10 on torch 2.14 -- a thread torch started late asks
    for the GIL while the interpreter finalises, and unwinding it through torch's C++ frames aborts (the emulated
    card sees the same with its autograd threads: emulator/torch_sdaa/__init__.py). 50 ms lets such threads finish
    starting: 0 aborts in 10 runs. Registered before the script runs, so it runs after the script's own handlers.
    """
    import atexit
    import time

    atexit.register(time.sleep, seconds)


def popen(args, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` whose process dies with this one (SIGKILL included; see the module docstring)."""
    if os.name == "posix":
        parent = os.getpid()

        def child_setup() -> None:  # in the child, between fork and exec
            die_with_parent()
            if os.getppid() != parent:  # the parent died before the line above: go at once
                os._exit(1)

        kwargs.setdefault("preexec_fn", child_setup)
    return subprocess.Popen(args, **kwargs)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class GroupWatchdog:
    """Kills the registered process groups when the runner is gone (see the module docstring)."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.proc: Optional[subprocess.Popen] = None
        if os.name == "posix":
            # this file as a script: the standard library only, not `import kit` (torch, timm: seconds)
            self.proc = subprocess.Popen([sys.executable, "-S", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                         start_new_session=True, text=True, bufsize=1)

    def _tell(self, line: str) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write(line + "\n")
                self.proc.stdin.flush()

    def register(self, pgid: int) -> None:
        self.groups.add(pgid)
        self._tell(f"+{pgid}")

    def release(self) -> None:
        """Kill every registered group now (the kernels were shut down; this takes what they left running)."""
        for pgid in sorted(self.groups):
            _kill_group(pgid)
            self._tell(f"-{pgid}")
        self.groups.clear()

    def close(self) -> None:
        self.release()
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            self.proc.wait()


@contextlib.contextmanager
def watchdog() -> Iterator[GroupWatchdog]:
    guard = GroupWatchdog()
    try:
        yield guard
    finally:
        guard.close()


def tied_kernel_manager(guard: GroupWatchdog):
    """An ``AsyncKernelManager`` class whose kernels' process groups ``guard`` owns (nbclient's
    ``kernel_manager_class``; papermill passes it through)."""
    from jupyter_client.manager import AsyncKernelManager

    class TiedKernelManager(AsyncKernelManager):
        async def _async_post_start_kernel(self, **kw) -> None:
            await super()._async_post_start_kernel(**kw)
            provisioner = self.provisioner
            pgid = getattr(provisioner, "pgid", None)
            process = getattr(provisioner, "process", None)
            if pgid is None and process is not None:
                with contextlib.suppress(OSError):
                    pgid = os.getpgid(process.pid)
            if pgid and pgid != os.getpgrp():
                guard.register(pgid)

    return TiedKernelManager


def _watch() -> None:
    """The watchdog process: read ``+pgid`` / ``-pgid`` lines until the runner's end closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle; the pipe says when it is gone
    groups: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if line[:1] == "+":
            groups.add(int(line[1:]))
        elif line[:1] == "-":
            groups.discard(int(line[1:]))
    for pgid in groups:
        _kill_group(pgid)


if __name__ == "__main__":
    _watch()
