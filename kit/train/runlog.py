"""The two logs of a run: ``metrics.jsonl`` for programs, ``train.log`` in the ModelZoo's format.

``metrics.jsonl``
    one JSON object per optimizer step (``step``, ``epoch``, ``loss``, ``lr``, ``images_per_s``,
    plus ``iter``, ``grad_norm``, ``time``) and one per validation (``split: "val"``, ``acc1``,
    ``acc5``, ``loss``, ``epoch``, ``step``). A non-finite loss is written as ``null``.
``train.log``
    a short preamble (recipe, device, precision, learning-rate scaling), then one line per
    iteration exactly as the Tecorigin ModelZoo ports write them with tcap_dllogger::

        TCAPPDLL 2025-05-20 13:34:46.504606 - Epoch: 0 Iteration: 0  rank : 0  train.loss : 6.99  train.ips : 2.8 imgs/s

    so the ModelZoo's own ``loss.py`` (which matches ``rank : 0  train.loss : ``) reads kit runs
    unchanged. ``Iteration`` is the global step (as mmengine's ``runner.iter`` in the HiViT port),
    so it never repeats across epochs; for the usual one-epoch 100-iteration alignment run it is the
    same number DeiT's loop prints.

Both files are written by rank 0 only, unbuffered (each line goes out when it is written), so a
killed run loses at most the line being written. A checkpoint records the byte length of both files at the moment it is
saved; resuming cuts the files back to those lengths, which drops exactly the lines of the steps
that the checkpoint does not contain (and any half-written last line).

A full disk stops the run with one line (:class:`kit.core.diskfull.DiskFull`, exit 2) and the file is cut back to
its last complete line first, so ``metrics.jsonl`` stays valid JSON lines whatever the disk does.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Mapping, Optional

from kit.core.diskfull import disk_full, is_out_of_space

__all__ = ["METRICS", "TRAIN_LOG", "tcappdll_line", "RunLog", "read_metrics"]

METRICS = "metrics.jsonl"
TRAIN_LOG = "train.log"


def tcappdll_line(
    epoch: int, iteration: int, loss: float, ips: float, rank: int = 0, when: Optional[datetime] = None
) -> str:
    """One ModelZoo log line (tcap_dllogger's StdOutBackend layout, two spaces between metrics)."""
    stamp = (when or datetime.now()).strftime("%Y-%m-%d %H:%M:%S.%f")
    return (
        f"TCAPPDLL {stamp} - Epoch: {epoch} Iteration: {iteration}  rank : {rank}  "
        f"train.loss : {float(loss)!r}  train.ips : {float(ips)!r} imgs/s"
    )


def _json_safe(record: Mapping[str, Any]) -> dict:
    """NaN/inf are not JSON: write them as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


class RunLog:
    """Appends to ``metrics.jsonl`` and ``train.log`` in ``out_dir`` (a no-op object when disabled).

    ``resume_offsets``: byte lengths saved in a checkpoint; the files are cut back to them and
    appended to. Without it the files are started afresh.
    """

    def __init__(
        self, out_dir: str | os.PathLike, enabled: bool = True, resume_offsets: Optional[Mapping[str, int]] = None
    ):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self._files: dict[str, IO[bytes]] = {}  # unbuffered: a line is on its way to disk when _write returns
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (METRICS, TRAIN_LOG):
            path = self.out_dir / name
            if resume_offsets is not None:
                _cut_back(path, int(resume_offsets.get(name, 0)))
                self._files[name] = open(path, "ab", buffering=0)
            else:
                self._files[name] = open(path, "wb", buffering=0)

    # -- writing ---------------------------------------------------------------------------------
    def _write(self, name: str, line: str) -> None:
        if self.enabled:
            f = self._files[name]
            data = (line + "\n").encode("utf-8")
            complete = os.fstat(f.fileno()).st_size  # where the last complete line ends
            try:
                while data:
                    data = data[f.write(data):]
            except OSError as e:
                if not is_out_of_space(e):
                    raise
                os.truncate(f.fileno(), complete)  # no half line (truncating frees space: it cannot fail for it)
                raise disk_full(f"the run's log {name}", self.out_dir / name, len(line) + 1,
                                intact=f"{name} holds every line up to the one that did not fit") from None

    def info(self, text: str) -> None:
        """A free-text line in train.log (the preamble, validation results, notes)."""
        for line in str(text).splitlines() or [""]:
            self._write(TRAIN_LOG, line)

    def step(self, record: Mapping[str, Any]) -> None:
        """One optimizer step: a metrics.jsonl object and a TCAPPDLL line (rank 0 writes, so rank 0 it says)."""
        self._write(METRICS, json.dumps(_json_safe(record)))
        self._write(TRAIN_LOG, tcappdll_line(record["epoch"], record["step"], record["loss"], record["images_per_s"]))

    def eval(self, record: Mapping[str, Any]) -> None:
        """One validation: a metrics.jsonl object and a readable line in train.log."""
        self._write(METRICS, json.dumps(_json_safe(record)))
        parts = "  ".join(
            f"{k} : {v:.4f}" if isinstance(v, float) else f"{k} : {v}" for k, v in record.items() if k != "split"
        )
        self.info(f"{record.get('split', 'val')}  {parts}")

    # -- positions -------------------------------------------------------------------------------
    def offsets(self) -> dict[str, int]:
        """Current byte length of both files (saved in checkpoints)."""
        return {name: os.fstat(f.fileno()).st_size for name, f in self._files.items()}

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _cut_back(path: Path, size: int) -> None:
    """Truncate ``path`` to ``size`` bytes (what a checkpoint recorded); create it if it is missing."""
    path.touch()
    if path.stat().st_size > size:
        with open(path, "r+b") as f:
            f.truncate(size)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """All records of a metrics.jsonl (for notebooks and tests)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
