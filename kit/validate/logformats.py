"""Training-loss log readers: which log formats exist, and why each is read the way it is.

:func:`read_curve` turns one log file into a :class:`Curve`, the input of
:func:`kit.validate.compare.compare_curves`. Readers, one small function per format, are listed in
:data:`READERS` (name -> detector + parser); the format is detected from the file's content unless
forced. Every reader returns the log's own step numbers where it has them:

* ``tcappdll`` -- ModelZoo ``TCAPPDLL`` text lines, both spacings (``rank : 0  train.loss :`` and the
  HiViT hook's ``rank: 0 train.loss :``), and the kit's ``train.log``. Only rank 0 lines count.
  The step comes from ``Epoch: E Iteration: I``: when the iteration counter runs on across epochs
  (mmengine's ``runner.iter``) the step is the iteration; when it restarts at each epoch, the step
  is the iteration plus the iterations of the earlier epochs in the log, an epoch's length being its
  largest logged iteration + 1 (or + 0 for 1-based counters). Epochs absent from the log are not
  counted. Lines without ``Epoch:/Iteration:`` make the whole file step-less (paired by position).
* ``tcappdll-json`` -- ``TCAPPDLL {...}`` JSON records of tcap_dllogger's JSON backend; ``step`` is
  ``[epoch, iteration]`` (same rule as above) or one number; the loss is ``train.loss``, ``loss``,
  ``QA.train.loss`` or ``QA.loss`` in ``data`` (a dict, or a dict written as a string).
* ``mmengine`` -- mmengine text logs, ``Epoch(train) [e][i/n] ... loss: x``: step ``(e-1)*n + i``,
  the same number mmengine writes as ``step`` in ``scalars.json``; ``Iter(train) [i/n]``: step ``i``.
  (mmengine's ``loss`` is a mean over a 10-iteration window.)
* ``mmengine-scalars`` -- ``vis_data/scalars.json``: records with a ``loss``, step ``step``.
* ``deit-console`` -- DeiT's ``MetricLogger`` output ``Epoch: [e]  [i/n] ... loss: x (avg)``:
  step ``e*n + i``; the loss is the first number (the median of a 20-iteration window), not the
  running average in brackets.
* ``deit-log`` -- DeiT's ``log.txt``, one JSON object per epoch: ``train_loss`` at step ``epoch``.
* ``kit-metrics`` -- the kit's ``metrics.jsonl``: records with ``loss`` and ``step``; validation
  records (``"split": "val"``) are not training-loss points.

A step logged twice (a resumed run that re-logged steps) keeps its later value, and the report says
how many were overwritten.

Notebook API: :func:`read_curve`, :func:`head`, :class:`Curve`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional

import numpy as np

from kit.core.errors import UserError

__all__ = ["Curve", "Points", "head", "Reader", "READERS", "detect_format", "read_curve"]

#: How much of a file format detection looks at before trying the whole file.
_DETECT_HEAD = 1 << 20


@dataclass
class Curve:
    """One training-loss curve, as read from one log file.

    ``steps``/``losses`` are the clean curve: sorted by step, one point per step (the later line
    wins). ``raw`` keeps every loss in file order, duplicates included: that is what ModelZoo's
    ``loss.py`` reads, so the legacy figures use it. ``order[i]`` is the position in ``raw`` of
    clean point ``i``. ``lines``/``raw_lines`` give the 1-based line of each point in the file.
    """

    steps: np.ndarray  # int64; the log's own steps, or 0..n-1 when has_steps is False
    losses: np.ndarray  # float64
    format: str
    path: str
    has_steps: bool = True
    raw: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    order: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    overwritten: int = 0  # points replaced by a later line for the same step
    notes: list = field(default_factory=list)
    # The line numbers, or a function that finds them: text logs find them only when a message needs
    # one, which keeps reading a million-line log fast.
    line_finder: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.raw is None:
            self.raw = self.losses
        if self.order is None:
            self.order = np.arange(len(self.losses))

    def __len__(self) -> int:
        return len(self.losses)

    @property
    def raw_lines(self) -> np.ndarray:
        if callable(self.line_finder):
            self.line_finder = self.line_finder()
        if self.line_finder is None:  # a curve made in code, not read from a file
            return np.arange(1, len(self.raw) + 1)
        return self.line_finder

    @property
    def lines(self) -> np.ndarray:
        return self.raw_lines[self.order]

    def where(self, i: int, raw: bool = False) -> str:
        """``path:line`` of point ``i`` (of the clean curve, or of ``raw``), for messages."""
        return f"{self.path}:{int(self.raw_lines[i if raw else self.order[i]])}"

    def describe(self) -> str:
        span = f", steps {self.steps[0]}..{self.steps[-1]}" if self.has_steps else ", no steps"
        return f"{self.path}  ({self.format}, {len(self)} points{span})"


class Points(NamedTuple):
    """What a parser returns: losses in file order, their steps (or None), and their line numbers
    (an array, or a function returning one)."""

    losses: np.ndarray
    steps: Optional[np.ndarray]
    lines: object


def head(curve: Curve, n: int) -> Curve:
    """The first ``n`` points of ``curve`` (the ModelZoo's alignment runs compare the first 100 iterations)."""
    return Curve(steps=curve.steps[:n], losses=curve.losses[:n], format=curve.format, path=curve.path,
                 has_steps=curve.has_steps, notes=list(curve.notes))


@dataclass(frozen=True)
class Reader:
    detect: Callable[[str], bool]  # looks at the head of the file's text
    parse: Callable[[str, str], Points]  # (text, path) -> Points
    describe: str


def _line_numbers(text: str, offsets: list) -> np.ndarray:
    """1-based line numbers of character offsets (vectorised: a log can have a million lines)."""
    if text.isascii():
        newlines = np.flatnonzero(np.frombuffer(text.encode("ascii"), np.uint8) == 10)
    else:  # character offsets differ from byte offsets
        newlines = np.fromiter((m.start() for m in re.finditer("\n", text)), np.int64)
    return np.searchsorted(newlines, np.asarray(offsets, dtype=np.int64)) + 1


def _floats(values: list, lines, path: str) -> np.ndarray:
    """Losses as float64; a value that is not a number is an error naming its line."""
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        for value, line in zip(values, lines() if callable(lines) else lines):
            try:
                float(value)
            except (ValueError, TypeError):
                raise UserError(f"{path}:{line}: cannot read the loss {value!r} as a number") from None
        raise


def _steps_from_epoch_iteration(epochs: np.ndarray, iterations: np.ndarray) -> np.ndarray:
    """One step number per (epoch, iteration) pair; see the module docstring for the rule."""
    uniq, inv = np.unique(epochs, return_inverse=True)
    inv = inv.reshape(-1)
    lo = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(len(uniq), np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(lo, inv, iterations)
    np.maximum.at(hi, inv, iterations)
    if not np.any(lo[1:] <= hi[:-1]):  # the counter runs on across epochs: it is the step
        return iterations
    base = int(iterations.min())  # 0- or 1-based counter
    offset = np.concatenate([[0], np.cumsum(hi - base + 1)[:-1]])
    return offset[inv] + iterations


def _regex_points(text: str, path: str, pattern: re.Pattern, to_step: Callable) -> Points:
    """Parse a text log with one regex whose groups are (step fields..., loss)."""

    def lines() -> np.ndarray:  # only called when a message names a line: reads the file again
        text = _open_text(Path(path))
        return _line_numbers(text, [m.start() for m in pattern.finditer(text)])

    rows = pattern.findall(text)
    if not rows:
        return Points(np.empty(0), None, lines)
    columns = list(zip(*rows)) if pattern.groups > 1 else [rows]  # findall gives strings for one group
    losses = _floats(columns[-1], lines, path)
    return Points(losses, to_step(*(np.array(c, dtype=np.int64) for c in columns[:-1])), lines)


# TCAPPDLL text. Rank 0 only, as in loss.py. Two patterns: the one with the step starts with a
# literal, which keeps a million-line log fast; the step-less one is tried only when some loss
# lines were not matched by the first.
_TCAPPDLL_LINE = re.compile(r"TCAPPDLL (?!\{)[^\n]*?rank\s*:\s*\d+\s+train\.loss\s*:")
_TCAPPDLL_STEP = re.compile(r"Epoch:\s*(\d+)\s+Iteration:\s*(\d+)\s+rank\s*:\s*0\s+train\.loss\s*:\s*(\S+)")
_TCAPPDLL_NOSTEP = re.compile(r"rank\s*:\s*0\s+train\.loss\s*:\s*(\S+)")


def _parse_tcappdll(text: str, path: str) -> Points:
    points = _regex_points(text, path, _TCAPPDLL_STEP, _steps_from_epoch_iteration)
    if text.count("train.loss") != len(points.losses):
        stepless = _regex_points(text, path, _TCAPPDLL_NOSTEP, lambda: None)
        if len(stepless.losses) > len(points.losses):
            return stepless
    return points


# tcap_dllogger's JSON backend: ``TCAPPDLL {"type": "LOG", "step": [e, i], "data": ...}``.
_JSON_LOSS_KEYS = ("train.loss", "QA.train.loss", "loss", "QA.loss")
_DATA_ITEM = re.compile(r"""['"]([\w.]+)['"]\s*:\s*['"]?([^,'"}\s]+)""")


def _record_data(data) -> dict:
    """tcap_dllogger's ``data``: a dict, or a dict written as a string (JSON or Python repr)."""
    if isinstance(data, dict):
        return data
    if isinstance(data, str):
        return dict(_DATA_ITEM.findall(data))
    return {}


def _parse_tcappdll_json(text: str, path: str) -> Points:
    losses, lines, steps = [], [], []
    for lineno, record in _json_records(text, path, prefix="TCAPPDLL {"):
        if record.get("type", "LOG") != "LOG":
            continue
        data = _record_data(record.get("data"))
        loss = next((data[k] for k in _JSON_LOSS_KEYS if k in data), None)
        if loss is None or str(data.get("rank", 0)) != "0":
            continue
        losses.append(loss)
        lines.append(lineno)
        steps.append(record.get("step"))
    lines = np.array(lines, dtype=np.int64)
    losses = _floats(losses, lines, path)
    if steps and all(isinstance(s, list) and len(s) == 2 for s in steps):
        e, i = (_int_column([s[k] for s in steps], lines, path) for k in (0, 1))
        return Points(losses, _steps_from_epoch_iteration(e, i), lines)
    flat = [s[0] if isinstance(s, list) and len(s) == 1 else s for s in steps]
    if steps and all(_is_int(s) for s in flat):
        return Points(losses, np.array(flat, dtype=np.int64), lines)
    return Points(losses, None, lines)


# mmengine text: "Epoch(train)  [  1][ 100/20018]  ... loss: 7.1269" or "Iter(train) [ 100/1000] ...".
_MMENGINE_EPOCH = re.compile(
    r"Epoch\(train\)\s*\[\s*(\d+)\s*\]\s*\[\s*(\d+)\s*/\s*(\d+)\s*\][^\n]*?\sloss:\s*([^\s,]+)"
)
_MMENGINE_ITER = re.compile(r"Iter\(train\)\s*\[\s*(\d+)\s*/\s*\d+\s*\][^\n]*?\sloss:\s*([^\s,]+)")


def _parse_mmengine(text: str, path: str) -> Points:
    by_epoch = _regex_points(text, path, _MMENGINE_EPOCH, lambda e, i, n: (e - 1) * n + i)
    if len(by_epoch.losses):
        return by_epoch
    return _regex_points(text, path, _MMENGINE_ITER, lambda i: i)


# DeiT's MetricLogger: "Epoch: [0]  [  10/5004]  eta: ...  lr: ...  loss: 6.9123 (6.9301)  time: ...".
_DEIT_CONSOLE = re.compile(r"Epoch: \[(\d+)\]\s+\[\s*(\d+)\s*/\s*(\d+)\s*\][^\n]*?\sloss:\s*([^\s(]+)")


def _parse_deit_console(text: str, path: str) -> Points:
    return _regex_points(text, path, _DEIT_CONSOLE, lambda e, i, n: e * n + i)


# JSON Lines formats.
def _json_records(text: str, path: str, prefix: str = "") -> Iterator[tuple]:
    """(line number, dict) for every non-empty line (that starts with ``prefix``, which is kept
    from its last character on: ``"TCAPPDLL {"`` keeps the brace). A last line cut short (no
    newline, not valid JSON: a run killed while writing) is left out rather than refused."""
    rows = text.split("\n")
    for lineno, line in enumerate(rows, 1):
        line = line.strip()
        if not line or not line.startswith(prefix):
            continue
        try:
            record = json.loads(line[max(len(prefix) - 1, 0) :])
        except json.JSONDecodeError as e:
            if lineno == len(rows):  # the unterminated last line
                continue
            raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if isinstance(record, dict):
            yield lineno, record


def _is_int(value) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())


def _int_column(values: list, lines, path: str) -> np.ndarray:
    for value, line in zip(values, lines):
        if not _is_int(value):
            raise UserError(f"{path}:{line}: the step {value!r} is not an integer")
    return np.array(values, dtype=np.int64)


def _json_lines_parser(pick: Callable[[dict], Optional[tuple]]) -> Callable[[str, str], Points]:
    """A parser for a JSON Lines log; ``pick(record)`` gives ``(step, loss)`` or None to skip."""

    def parse(text: str, path: str) -> Points:
        lines, steps, losses = [], [], []
        for lineno, record in _json_records(text, path):
            picked = pick(record)
            if picked is not None:
                lines.append(lineno)
                steps.append(picked[0])
                losses.append(float("nan") if picked[1] is None else picked[1])
        lines = np.array(lines, dtype=np.int64)
        losses = _floats(losses, lines, path)
        if losses.size and all(s is not None for s in steps):
            return Points(losses, _int_column(steps, lines, path), lines)
        return Points(losses, None, lines)

    return parse


def _kit_metrics_pick(rec: dict):
    if rec.get("split", "train") != "train" or "loss" not in rec:
        return None  # validation records carry a loss too, but not a training-loss point
    return rec.get("step"), rec["loss"]


def _mmengine_scalars_pick(rec: dict):
    return (rec.get("step", rec.get("iter")), rec["loss"]) if "loss" in rec else None


def _deit_log_pick(rec: dict):
    return (rec.get("epoch"), rec["train_loss"]) if "train_loss" in rec else None


def _json_keys(head: str, limit: int = 20) -> set:
    """Keys of the first JSON objects of a JSON Lines file (empty if it is not one)."""
    keys: set = set()
    for line in head.split("\n")[: limit * 4]:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break  # maybe the head cut the line; what was read decides
        if not isinstance(record, dict):
            return set()
        keys |= record.keys()
        limit -= 1
        if not limit:
            break
    return keys


def _is_kit_metrics(head: str) -> bool:
    keys = _json_keys(head)
    # images_per_s is the kit's own key (the trainer also writes iter, which mmengine's scalars have too)
    return "step" in keys and "loss" in keys and (
        "images_per_s" in keys or not keys & {"train_loss", "base_lr", "data_time", "iter"}
    )


#: format name -> detector + parser. Detection tries them in this order (per-iteration text formats
#: first: a console log can hold TCAPPDLL lines next to coarser ones).
READERS: dict[str, Reader] = {
    "tcappdll": Reader(
        lambda head: bool(_TCAPPDLL_LINE.search(head)),
        _parse_tcappdll,
        "TCAPPDLL text lines (ModelZoo logs, the kit's train.log)",
    ),
    "tcappdll-json": Reader(
        lambda head: bool(re.search(r"^TCAPPDLL \{", head, re.M)),
        _parse_tcappdll_json,
        "TCAPPDLL JSON records (tcap_dllogger JSON backend)",
    ),
    "mmengine": Reader(
        lambda head: bool(_MMENGINE_EPOCH.search(head) or _MMENGINE_ITER.search(head)),
        _parse_mmengine,
        "mmengine text log (Epoch(train) [e][i/n] ... loss: x)",
    ),
    "deit-console": Reader(
        lambda head: bool(_DEIT_CONSOLE.search(head)),
        _parse_deit_console,
        "DeiT console output (Epoch: [e]  [i/n] ... loss: x (avg))",
    ),
    "kit-metrics": Reader(_is_kit_metrics, _json_lines_parser(_kit_metrics_pick), "the kit's metrics.jsonl"),
    "mmengine-scalars": Reader(
        lambda head: "loss" in _json_keys(head) and bool(_json_keys(head) & {"base_lr", "data_time", "iter"}),
        _json_lines_parser(_mmengine_scalars_pick),
        "mmengine vis_data/scalars.json",
    ),
    "deit-log": Reader(
        lambda head: "train_loss" in _json_keys(head), _json_lines_parser(_deit_log_pick), "DeiT log.txt"
    ),
}


def detect_format(text: str, path: str = "<text>") -> str:
    """The name of the first reader in :data:`READERS` that recognises ``text``."""
    heads = [text[:_DETECT_HEAD]] + ([text] if len(text) > _DETECT_HEAD else [])
    for head in heads:
        for name, reader in READERS.items():
            if reader.detect(head):
                return name
    raise UserError(
        f"{path}: no training loss found: the file is in none of the formats kit compare reads "
        f"({', '.join(READERS)}); use --format to force one"
    )


@contextlib.contextmanager
def _gc_paused():
    """Parsing a big log builds a million small tuples; the cyclic garbage collector would walk
    them again and again for nothing (none of them can form a cycle), so it is paused meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _resolve(path: Path) -> Path:
    """A kit run folder stands for its metrics.jsonl (or its train.log)."""
    if not path.is_dir():
        return path
    for name in ("metrics.jsonl", "train.log"):
        if (path / name).is_file():
            return path / name
    raise UserError(f"{path}: is a folder with no metrics.jsonl or train.log in it")


def _open_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the file ({e.strerror or e})") from None


def read_curve(path, fmt: Optional[str] = None) -> Curve:
    """Read the training-loss curve of one log; ``fmt`` (a key of :data:`READERS`) forces the format.

    Raises :class:`kit.core.errors.UserError` (naming the file, and the line where there is one) for a
    missing or unreadable file, an unknown format, a value that is not a number, or no loss at all.
    """
    path = _resolve(Path(path))
    text = _open_text(path)
    if fmt is None:
        fmt = detect_format(text, str(path))
    elif fmt not in READERS:
        raise UserError(f"unknown log format {fmt!r}; choose one of {', '.join(READERS)}")
    with _gc_paused():
        points = READERS[fmt].parse(text, str(path))
    if not len(points.losses):
        raise UserError(f"{path}: no training loss found (read as {fmt}: {READERS[fmt].describe})")
    curve = Curve(
        steps=np.arange(len(points.losses), dtype=np.int64),
        losses=points.losses,
        format=fmt,
        path=str(path),
        has_steps=points.steps is not None,
        line_finder=points.lines,
    )
    if points.steps is not None:
        # Keep the last line of each step: reverse, take first occurrences, which np.unique sorts.
        steps, first_in_reversed = np.unique(points.steps[::-1], return_index=True)
        curve.order = len(points.steps) - 1 - first_in_reversed
        curve.steps, curve.losses = steps, points.losses[curve.order]
        curve.overwritten = len(points.steps) - len(steps)
        if curve.overwritten:
            curve.notes.append(
                f"{path}: {curve.overwritten} step(s) logged more than once; the later value was kept"
            )
    return curve
