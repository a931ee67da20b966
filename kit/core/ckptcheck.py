"""Why a checkpoint cannot be read, and the way on: truncated, not a kit checkpoint, or from a newer kit.

``torch.load`` on a damaged file says ``OSError: [Errno 22] Invalid argument`` or ``PytorchStreamReader
failed reading zip archive: failed finding central directory``, which tells nobody that the file was cut
off (a full disk, a copy that stopped, a sync that had not finished). When a load fails, :func:`unreadable`
looks at the file itself and names the cause:

* **truncated** - a PyTorch checkpoint is a zip archive whose directory is at its end; without it the file
  was cut off. Its first record, ``data.pkl``, lists every tensor it holds with its size, so the message
  gives the file's size against what a complete one holds (at least the bytes of those tensors);
* **not a PyTorch checkpoint** - it does not begin as one (a zip, or the legacy pickle format) at all.

:func:`check_training_state` names the other two causes once a file loads: not a kit training checkpoint
(no ``format``, or ``best.pth``'s weights-only format) and a ``format`` newer than this kit reads.
The way on: ``best.pth`` beside it, when there is one, or starting over.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
import warnings
from pathlib import Path
from typing import Any, Optional

from kit.core.diskfull import human
from kit.core.errors import UserError

_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_END = b"PK\x05\x06"


def _tensor_bytes_listed(head: bytes) -> Optional[int]:
    """The bytes of every tensor storage ``data.pkl`` lists, from the file's first bytes; None if unreadable."""
    if not head.startswith(_ZIP_LOCAL) or len(head) < 30:
        return None
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    name = head[30:30 + name_len].decode("utf-8", "replace")
    if not name.endswith("data.pkl"):
        return None
    start = 30 + name_len + extra_len
    sizes: list[int] = []

    class Stub(dict):  # stands for any object: accepts calls, items, appends and state, and keeps nothing
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args, **kwargs):
            return Stub()

        def __setstate__(self, state):
            pass

        def __setitem__(self, key, value):
            pass

        def append(self, value):
            pass

        def extend(self, values):
            pass

    class Lister(pickle.Unpickler):
        def find_class(self, module: str, name: str):  # never runs anything: every global is a stub
            if module == "torch" and name.endswith("Storage"):
                return ("storage", name)
            return Stub

        def persistent_load(self, pid):
            if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
                sizes.append(int(pid[4]) * _element_size(pid[1]))
            return Stub()

    try:
        Lister(io.BytesIO(head[start:])).load()
    except Exception:  # noqa: BLE001 - cut off inside data.pkl itself, or not torch's layout
        return None
    return sum(sizes)


def _element_size(storage_type: Any) -> int:
    """Bytes per element of a typed storage class named in a checkpoint (``FloatStorage``: 4)."""
    import torch

    name = storage_type[1] if isinstance(storage_type, tuple) else getattr(storage_type, "__name__", "")
    try:
        with warnings.catch_warnings():  # (TypedStorage is deprecated; its dtype is all that is asked)
            warnings.simplefilter("ignore")
            return torch.empty(0, dtype=getattr(torch, name).dtype).element_size()
    except (AttributeError, TypeError):
        return 1  # UntypedStorage and ByteStorage count bytes


def unreadable(path: str | Path, error: BaseException) -> str:
    """Why ``path`` failed to load (``error`` is what ``torch.load`` raised): one sentence, no way on."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(1 << 20)
        f.seek(max(0, size - (1 << 16)))
        tail = f.read()
    if size == 0:
        return f"{path} is empty (0 bytes): it was cut off before anything was written"
    if head.startswith(_ZIP_LOCAL):
        if _ZIP_END not in tail:
            listed = _tensor_bytes_listed(head)
            whole = (f"a complete one holds at least {human(listed)} ({listed:,} bytes of tensors)"
                     if listed else "it was cut off before even its list of tensors")
            return f"{path} is truncated: it has {human(size)} ({size:,} bytes) and {whole}"
    elif not head.startswith(b"\x80"):  # neither a zip nor torch's legacy pickle format
        return f"{path} is not a PyTorch checkpoint (it begins with {head[:8]!r}), so not a kit checkpoint"
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"cannot load {path}: {type(error).__name__}: {first}"


def way_on(path: str | Path) -> str:
    """What to do instead: ``best.pth`` beside it (weights only), or start over."""
    path = Path(path)
    best = path.with_name("best.pth")
    if best != path and best.is_file():
        return (f"{best} still holds the best validated weights (load them with kit.models.create(..., "
                "checkpoint=...)), but no optimizer state: to train, start over with --overwrite")
    return "start over with --overwrite (or another --out)"


_FORMAT = re.compile(r"vitkit-train-(\d+)(-weights)?")


def check_training_state(ckpt: Any, path: str | Path, expected: str) -> None:
    """Refuse a loaded object that is not a training state this kit (format ``expected``) can resume."""
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    match = _FORMAT.fullmatch(str(fmt)) if fmt is not None else None
    ours = int(_FORMAT.fullmatch(expected)[1])
    if fmt == expected:
        return
    if match is None:
        what = "no 'format' entry" if fmt is None else f"format {fmt!r}"
        cause = f"{path} is not a kit training checkpoint ({what}; `kit train` writes {expected!r})"
    elif match[2]:
        cause = f"{path} holds weights only (format {fmt!r}, a best.pth), not a training state to resume"
    elif int(match[1]) > ours:
        cause = (f"{path} was written by a newer kit (format {fmt!r}; this kit reads {expected!r}): "
                 "update the kit (git pull, then make setup) to resume it")
    else:
        cause = f"{path} was written by an older kit (format {fmt!r}; this kit reads {expected!r})"
    raise UserError(f"{cause}; {way_on(path)}")
