"""A full disk, said in one line: what was being written, where, how much it needed, what is free, what is intact.

Workshop laptops and shared lab servers fill up (ImageNet's preparation alone needs ~150 GB). A write that no
longer fits fails deep inside whatever writes: ``OSError(ENOSPC)`` or ``EDQUOT`` from a plain ``write``, and from
``torch.save`` a ``RuntimeError`` of its zip writer that hides the errno altogether (``[enforce fail at
inline_container.cc:672] . unexpected pos 1146944 vs 1146832``); safetensors says ``No space left on device``
inside its own error. None of them tells a learner that the disk is full, so every writer of the kit goes
through this module (:mod:`kit.core.atomic` for files, folders, checkpoints and figures,
:class:`kit.train.runlog.RunLog`
for the logs, ``data_prep`` for its images) and turns them into a :class:`DiskFull`: a
:class:`kit.core.errors.UserError`, so exit code 2 and one line, naming the file, the bytes it needed (or had
written when the disk filled) and the bytes free, and what is intact. The command that knows more about what is
intact (``kit train``: "the checkpoint of step 66 is intact; free space and rerun with --resume") replaces that
last part with :meth:`DiskFull.with_intact`.

:func:`warn_if_short` is the cheap check before a long job: free space against what it will write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from kit.core.errors import UserError

#: errnos that mean "the disk (or the user's quota) is full".
SPACE_ERRNOS = frozenset(e for e in (getattr(errno, "ENOSPC", None), getattr(errno, "EDQUOT", None)) if e)

#: How torch's zip writer and safetensors word a failed write; only trusted when free space confirms it.
_HIDDEN = re.compile(
    r"unexpected pos \d+ vs \d+|PytorchStreamWriter failed writing|file write failed"
    r"|No space left on device|Disk quota exceeded|os error 28|StorageFull"
)


def human(n: Optional[int]) -> str:
    """``1146832`` -> ``1.1 MB`` (decimal units, as ``df -H`` and file managers show them)."""
    if n is None:
        return "an unknown amount"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def free_bytes(path: Union[str, os.PathLike]) -> Optional[int]:
    """Free bytes on the file system of ``path`` (its nearest existing folder), for this user; None if unknown."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def is_out_of_space(exc: BaseException, path: Union[str, os.PathLike, None] = None,
                    needed: Optional[int] = None) -> bool:
    """Whether ``exc`` means the disk filled up.

    An ``OSError`` says so by its errno. A message that only looks like a failed write (torch's zip writer,
    safetensors) counts when ``path``'s file system confirms it: less free than ``needed``, or under 1 MB.
    """
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS:
        return True
    if not _HIDDEN.search(str(exc)):
        return False
    if "No space left" in str(exc) or "os error 28" in str(exc) or "Disk quota" in str(exc):
        return True
    free = free_bytes(path) if path is not None else None
    return free is not None and free < max(needed or 0, 1_000_000)


class DiskFull(UserError):
    """The disk filled while the kit wrote something (exit code 2); the message says what and what is intact."""

    def __init__(self, message: str, what: str = "", path: str = "", needed: Optional[int] = None,
                 written: Optional[int] = None, free: Optional[int] = None, intact: str = ""):
        super().__init__(message)
        self.what, self.path, self.needed, self.written, self.free, self.intact = (
            what, path, needed, written, free, intact)

    def __reduce__(self):  # through a process pool: the message, which is all that is shown
        return (DiskFull, (str(self),))

    def with_intact(self, intact: str) -> "DiskFull":
        """The same failure, with what the caller knows is intact (and the way on) as its last part."""
        if not self.what:
            return DiskFull(f"{self}; {intact}")
        return disk_full(self.what, self.path, self.needed, self.written, intact, free=self.free)


def disk_full(what: str, path: Union[str, os.PathLike], needed: Optional[int] = None, written: Optional[int] = None,
              intact: str = "", free: Optional[int] = None) -> DiskFull:
    """The one line: ``no space left on the disk writing <what> <path>: it needs ..., ... is free; <intact>``."""
    free = free_bytes(path) if free is None else free
    if needed is not None:
        size = f"it needs about {human(needed)}"
    elif written:
        size = f"it needs more than the {human(written)} written when the disk filled"
    else:
        size = "it did not fit"
    message = f"no space left on the disk writing {what} {path}: {size}, {human(free)} is free"
    if intact:
        message += f"; {intact}"
    return DiskFull(message, what, str(path), needed, written, free, intact)


def earlier_copy(path: Union[str, os.PathLike]) -> str:
    """What an atomic write leaves when it fails: the earlier file (if any) untouched, no half-written one."""
    p = Path(path)
    if p.exists():
        return f"the earlier {p.name} is intact and nothing half-written was left; free space and run it again"
    return "nothing half-written was left; free space and run it again"


@contextlib.contextmanager
def writing(what: str, path: Union[str, os.PathLike], needed: Optional[int] = None,
            intact: Union[str, Callable[[], str], None] = None,
            written: Optional[Callable[[], Optional[int]]] = None, rename_inner: bool = False) -> Iterator[None]:
    """Turn a full disk inside the block into :class:`DiskFull` naming ``what`` and ``path``.

    ``intact`` (text, or a function called after the failure) says what is intact; by default
    :func:`earlier_copy`. ``written`` reports how many bytes had gone out when the disk filled.
    A :class:`DiskFull` from a write inside the block is passed on as it is, unless ``rename_inner``
    (a folder built under a temporary name: the user knows the folder, not the temporary file in it).
    """
    try:
        yield
    except DiskFull:
        if not rename_inner:
            raise
        text = intact() if callable(intact) else intact
        raise disk_full(what, path, needed, None, earlier_copy(path) if text is None else text) from None
    except Exception as e:  # noqa: BLE001 - OSError, torch's RuntimeError, safetensors' own error
        if not is_out_of_space(e, path, needed):
            raise
        text = intact() if callable(intact) else intact
        raise disk_full(what, path, needed, written() if written else None,
                        earlier_copy(path) if text is None else text) from None


def warn_if_short(path: Union[str, os.PathLike], needed: int, what: str,
                  say: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> bool:
    """Before a long job: say one warning line when ``path``'s disk has less free than ``needed``; True if so."""
    free = free_bytes(path)
    if free is None or free >= needed:
        return False
    say(f"warning: {what} need about {human(needed)} in {path}, but only {human(free)} is free there; "
        "the run will stop when the disk fills (free space first)")
    return True
