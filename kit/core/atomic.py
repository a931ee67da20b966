"""Write files so that an interrupted run never leaves something that looks finished.

Everything the kit and ``data_prep`` write goes to a temporary name in the same folder first
and is renamed into place when complete; a rename within one file system is atomic, so a
reader sees either the old file or the new one, never half of one.

A write that fills the disk becomes one line (:mod:`kit.core.diskfull`): what was being written, where, how much
it needed and how much is free; the earlier file is intact and the temporary one is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Optional

from kit.core import diskfull


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "the file", needed: Optional[int] = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    A full disk inside the block raises :class:`kit.core.diskfull.DiskFull` naming ``what`` and ``path``
    (``needed``: the bytes it would take, when known), after the temporary file is gone.
    """
    path = Path(path)
    tmp = _tmp_name(path)
    written: list[Optional[int]] = [None]
    with diskfull.writing(what, path, needed, written=lambda: written[0]):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                written[0] = tmp.stat().st_size
                tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", what: str = "the file", **kwargs) -> Iterator[IO]:
    """``open`` for writing, through :func:`atomic_path` (flushed and fsynced before the rename)."""
    with atomic_path(path, what) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, what: str = "the file") -> None:
    data = text.encode("utf-8")
    with atomic_path(path, what, len(data)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_torch_save(obj, path: str | os.PathLike, what: str = "the checkpoint") -> None:
    """``torch.save`` through a temporary file, so a checkpoint is never half-written.

    Its size is known beforehand (:func:`tensor_bytes`), so a full disk is reported with what it needed, even
    though torch's zip writer hides the errno (``unexpected pos ...``).
    """
    import torch

    with atomic_path(path, what, tensor_bytes(obj)) as tmp:
        failed = None
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # keep the text only: the traceback holds torch's writer, whose open file
            failed = str(e)  # would keep the space it took until the error is gone, and the free space we report
        if failed is not None:
            raise RuntimeError(failed)


def tensor_bytes(obj) -> int:
    """The bytes of every tensor in ``obj`` (nested dicts, lists, tuples): about what ``torch.save`` writes."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def atomic_savefig(fig, path: str | os.PathLike, **savefig_kwargs) -> None:
    """``fig.savefig(path, **savefig_kwargs)`` through a temporary file, so a figure is never half-written.

    The format comes from ``path``'s extension (PNG when it has none) unless ``format`` is given: the
    temporary name's extension would not tell matplotlib.
    """
    path = Path(path)
    savefig_kwargs.setdefault("format", path.suffix.lstrip(".").lower() or "png")
    with atomic_path(path, "the figure") as tmp:
        fig.savefig(tmp, **savefig_kwargs)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, what: str = "the folder", needed: Optional[int] = None) -> Iterator[Path]:
    """Build a directory under a temporary name; rename it to ``path`` when the block succeeds.

    An existing ``path`` is replaced only after the new one is complete. A full disk inside the block raises
    :class:`kit.core.diskfull.DiskFull` naming ``what`` and ``path``, after the temporary folder is gone.
    """
    path = Path(path)
    with diskfull.writing(what, path, needed):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); a dataset is meant to be shared
    with diskfull.writing(what, path, needed, rename_inner=True), _removed_unless_renamed(tmp):
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            _rmtree(old)
        else:
            os.replace(tmp, path)


@contextlib.contextmanager
def _removed_unless_renamed(tmp: Path) -> Iterator[None]:
    """Remove ``tmp`` when the block leaves it behind (it failed, or was interrupted)."""
    try:
        yield
    finally:
        if tmp.exists():
            _rmtree(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p, ignore_errors=True)
