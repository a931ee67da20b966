"""A folder that a command writes belongs to one process at a time.

``kit train --out runs/x`` refuses a folder that already holds a run, but that check and the first
write are seconds apart: two trainers started together (notebook 4 in two kernels, ``make run``
while a notebook trains) both passed it, both exited 0, and the folder was left with interleaved,
half-written ``metrics.jsonl`` lines and whichever checkpoint was written last. The same race is
open for a workshop run folder and for the ``--out`` of ``python -m data_prep``.

:func:`hold_run_folder` closes it with an operating-system lock (``flock`` on Unix, ``msvcrt``
locking on Windows, through the ``filelock`` package), taken before the command reads or writes
anything in the folder and held until it returns or raises. A second writer does not wait: it fails
at once with :class:`RunFolderBusy` (a :class:`kit.core.errors.UserError`: exit code 2 and one line naming
the folder and the process that holds it). No flag (``--resume``, ``--overwrite``, ``--force``)
takes a folder from a live process. The kernel drops the lock when its process ends, however it
ends (SIGKILL, a crash, power loss), so a dead run never blocks the next one and there is nothing
to clean up by hand.

Where the lock lives: beside the folder, in its parent, as ``.<name>.lock`` (``runs/.x.lock`` for
``runs/x``), and not inside it, because

* ``data_prep`` builds its ``--out`` under a temporary name and renames it into place
  (:func:`kit.core.atomic.atomic_dir`); a lock inside would leave with the old folder and the next writer
  would lock a fresh file, so two holders would coexist. The parent is stable across that rename;
* a folder that does not exist yet can be locked before it is made;
* the folder holds exactly what the command wrote.

Who holds it: after taking the lock the holder writes its pid, host, command and start time to
``.<name>.lock.json`` beside it, and removes that file before letting go; the refused process reads
it for its message (refused in the instant between a rival's lock and its record, it waits up to a few
seconds for the record). It is a file of its own because filelock may truncate or own the lock file's
contents. A holder that was killed leaves that file behind; the next holder overwrites it.

Under ``torchrun`` only rank 0 writes the run folder, so only rank 0 takes the lock (``enabled``);
the other ranks never touch the folder. A refused rank 0 exits with code 2 and torchrun stops the others.

(With filelock older than 4, processes forked while the lock is held, such as DataLoader workers,
share it: after a SIGKILL of their parent the lock goes when they exit, a few seconds later.)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

import filelock

from kit.core.atomic import atomic_write_text
from kit.core.errors import UserError


class RunFolderBusy(UserError):
    """Another live process holds the folder (exit code 2)."""


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` in its parent (symbolic links resolved, so that
    two spellings of one folder share one lock)."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name or 'root'}.lock"


def _holder_path(lock: Path) -> Path:
    return lock.with_name(lock.name + ".json")


#: How long a refused process waits for the holder's record, which is written just after the lock is taken.
RECORD_WAIT_S = 5.0


def describe_holder(folder: str | os.PathLike, wait_s: float = RECORD_WAIT_S) -> str:
    """Who holds ``folder``, from the record its holder wrote ("another process" if there is none).

    A process refused in the moment between its rival taking the lock and writing the record would find
    no record, or a dead holder's: it waits up to ``wait_s`` for a live holder's record to appear.
    """
    path, deadline = _holder_path(lock_path(folder)), time.monotonic() + wait_s
    while True:
        record, live = _read_record(path)
        if live or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if record is None:
        return "another process"
    return f"{record['what']} (pid {record['pid']} on host {record['host']}, started {record['started']})"


def _read_record(path: Path) -> tuple[Optional[dict], bool]:
    """(the holder's record or None, whether it names a live process as far as this host can tell)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not written yet, or not by a holder
        return None, False
    if not isinstance(record, dict) or not {"what", "pid", "host", "started"} <= record.keys():
        return None, False
    if os.name != "posix" or record["host"] != socket.gethostname():
        return record, True  # (os.kill(pid, 0) is no probe on Windows)
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return record, False
    except OSError:  # alive, another user's
        pass
    return record, True


@contextlib.contextmanager
def hold_run_folder(folder: str | os.PathLike, what: str = "kit train",
                    enabled: bool = True) -> Iterator[Optional[Path]]:
    """Hold ``folder`` for the block: yields the lock file's path (None when not ``enabled``).

    ``what`` names the command in the message another process gets. Raises :class:`RunFolderBusy`
    at once, having written nothing, when a live process holds the folder. ``enabled=False`` (the
    ranks other than 0) does nothing at all.
    """
    if not enabled:
        yield None
        return
    path = lock_path(folder)
    lock = filelock.FileLock(str(path), timeout=0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except filelock.Timeout:  # (before OSError: it is a TimeoutError)
        raise RunFolderBusy(
            f"{folder} is in use by {describe_holder(folder)}; wait for it to end or choose another --out "
            "(no flag takes a folder from a live process)"
        ) from None
    except OSError as e:
        raise UserError(f"cannot create the lock file {path} of {folder} ({e.strerror or e}): "
                        "its parent folder must be writable; choose another --out") from None
    holder = _holder_path(path)
    try:
        record = {"what": what, "pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.now().isoformat(sep=" ", timespec="seconds"), "folder": str(folder)}
        atomic_write_text(holder, json.dumps(record) + "\n")
        yield path
    finally:
        try:
            holder.unlink(missing_ok=True)  # before the lock goes: the next holder's record must survive
        finally:
            lock.release()
