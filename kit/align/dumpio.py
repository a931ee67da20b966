"""The dump folder on disk: ``index.json`` plus ``tensors.safetensors``, written atomically, read with checks.

Why this layout: JSON for everything a person or another tool may want to read (statistics, module
tree, environment), and safetensors for the full tensors, because it is a plain documented format
(a JSON header and raw little-endian buffers) that loads without pickle, on any machine, whatever
device wrote it. Tensors are stored as recorded (bf16 stays bf16) on the CPU. They are read back as numpy
float arrays (:meth:`Dump.tensor`), so that reading a dump (``kit align compare``) needs no torch; numpy has no
bfloat16, so a bf16 tensor is widened to float32 from its raw bits (exact: bf16 is float32's upper half).

The folder is built under a temporary name and renamed into place (:func:`kit.core.atomic.atomic_dir`), so
an interrupted dump never looks finished. Both files carry the same random ``dump_id``; a tensors file
from another dump, a missing or truncated file, or an index of another format is a
:class:`~kit.core.errors.UserError` that names the file.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kit.core.atomic import atomic_dir
from kit.core.errors import UserError

FORMAT = "vitkit-align-dump"
FORMAT_VERSION = 1
INDEX, TENSORS = "index.json", "tensors.safetensors"
REQUIRED_KEYS = ("model", "module_tree", "parameters", "entries", "amp", "config")
#: Full tensors up to this many elements are stored by default (1 MiB in fp32; `--full-tensors-max`).
FULL_TENSORS_MAX = 2**18

if TYPE_CHECKING:
    import torch

__all__ = ["FORMAT", "FORMAT_VERSION", "INDEX", "TENSORS", "FULL_TENSORS_MAX", "write_dump", "Dump", "read_dump"]


def write_dump(out: str | Path, index: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``index`` (completed with the format fields) and ``tensors`` as the dump folder ``out``."""
    from safetensors.torch import save_file

    dump_id = uuid.uuid4().hex
    index = {"format": FORMAT, "format_version": FORMAT_VERSION, "dump_id": dump_id, **index}
    with atomic_dir(out, "the align dump", needed=sum(t.numel() * t.element_size() for t in tensors.values())) as tmp:
        (tmp / INDEX).write_text(json.dumps(index, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        save_file(tensors, str(tmp / TENSORS), metadata={"format": FORMAT, "dump_id": dump_id})
    return Path(out)


@dataclass
class Dump:
    """A dump read back: its folder, its index, and the full tensors by key, loaded on demand."""

    path: Path
    index: dict

    @property
    def entries(self) -> list[dict]:
        return self.index["entries"]

    def tensor(self, key: str) -> np.ndarray:
        """The full tensor ``key`` as a numpy array (a bf16 one widened to float32, exactly)."""
        from safetensors import safe_open

        file = self.path / TENSORS
        with safe_open(str(file), framework="np") as f:
            if f.get_slice(key).get_dtype() != "BF16":
                return f.get_tensor(key)
        return _read_bf16(file, key)

    def describe(self) -> str:
        derived = self.index["config"].get("derived", {})
        device = self.index["config"].get("environment", {}).get("device", {}).get("device", "?")
        precision, batch = derived.get("precision", "?"), derived.get("global_batch", "?")
        return f"{self.index['model']} on {device}, {precision}, batch {batch}"


def _read_bf16(file: Path, key: str) -> np.ndarray:
    """A BF16 tensor of a safetensors file as float32: its raw 16-bit words become the upper halves of float32s.

    The file layout is safetensors' documented one: an 8-byte little-endian header length, the JSON header
    (``dtype``, ``shape``, ``data_offsets`` per tensor), then the buffers.
    """
    with open(file, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        info = json.loads(f.read(size))[key]
        begin, end = info["data_offsets"]
        f.seek(8 + size + begin)
        words = np.frombuffer(f.read(end - begin), dtype="<u2")
    return (words.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])


def _read_index(path: Path) -> dict:
    file = path / INDEX
    if not file.is_file():
        raise UserError(f"{file}: missing; is {path} a folder written by `kit align dump`?")
    try:
        index = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{file}: cannot be read ({type(e).__name__}: {e}); the dump is damaged, "
                        "write it again") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise UserError(f"{file}: not the index of a `kit align dump` folder")
    if index.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{file}: format version {index.get('format_version')!r}; this kit reads {FORMAT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in index]
    if missing:
        raise UserError(f"{file}: lacks {', '.join(missing)}; the dump is damaged, write it again")
    return index


def _check_tensors(path: Path, index: dict) -> None:
    from safetensors import safe_open

    file = path / TENSORS
    if not file.is_file():
        raise UserError(f"{file}: missing; the dump is incomplete, write it again")
    try:
        with safe_open(str(file), framework="np") as f:
            metadata: Any = f.metadata() or {}
            keys = set(f.keys())
    except Exception as e:  # noqa: BLE001  (safetensors raises its own error type from Rust for any bad file)
        raise UserError(f"{file}: cannot be read as safetensors ({e}); the dump is damaged, write it again") from None
    if metadata.get("dump_id") != index.get("dump_id"):
        raise UserError(f"{file}: belongs to another dump than {path / INDEX} (dump ids differ)")
    absent = [e["key"] for e in index["entries"] if e.get("saved") and e["key"] not in keys]
    if absent:
        raise UserError(f"{file}: lacks {len(absent)} tensors the index lists (first: {absent[0]})")


def read_dump(path: str | Path) -> Dump:
    """Open the dump folder ``path``, checking both files; a bad folder is a UserError naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such dump folder")
    index = _read_index(path)
    _check_tensors(path, index)
    return Dump(path, index)
