"""Loss-curve validation: is a port's training loss close enough to a reference run?

This is how a port to a new accelerator is judged: train the same recipe on the accelerator and on
a reference GPU, then compare the two loss curves. Tecorigin's ModelZoo does it with a small
``loss.py`` (``Demo/run_scripts/loss.py``)::

    MRE = mean((candidate - reference) / reference)      # signed
    MAE = mean(candidate - reference)                    # signed, despite its name
    pass  if  MRE <= 0.05  or  MAE <= 0.0002

over the two curves cut to the shorter one and paired by position. Because both means are signed,
errors of opposite sign cancel, and *any* candidate that sits below the reference passes: a curve
7 % below the reference everywhere has MRE = -0.07 <= 0.05. So this module reports two sets of
figures:

* **legacy** -- exactly what ModelZoo's ``loss.py`` computes, to quote in a ModelZoo pull request:
  every loss point of each file in file order, cut to the shorter, paired by position, signed means,
  never smoothed or skipped;
* **strict** (the default verdict) -- the same means over absolute values,
  ``mean(|c - r| / r)`` and ``mean(|c - r|)``, with the same thresholds, on the points paired by
  step when both logs carry steps (else by position), after the optional ``--skip`` (warm-up) and
  ``--smooth`` (moving average).

When the verdicts disagree, the report says why in a plain sentence.

Readers, one small function per format, are listed in :data:`READERS` (name -> detector + parser);
the format is detected from the file's content unless forced. Every reader returns the log's own
step numbers where it has them:

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

Notebook API: :func:`read_curve`, :func:`compare_curves`, :func:`format_report`,
:func:`plot_comparison`. CLI: ``kit compare REFERENCE CANDIDATE`` (exit 0 pass, 1 fail, 2 bad input).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional

import numpy as np

from kit.errors import UserError

#: The ModelZoo thresholds, used by both rules.
MRE_THRESHOLD = 0.05
MAE_THRESHOLD = 0.0002
#: Window of the moving average drawn in bold on the plot when --smooth is off (ModelZoo's plot
#: smooths with a window of 5 too, for display only).
DISPLAY_WINDOW = 5
#: How much of a file format detection looks at before trying the whole file.
_DETECT_HEAD = 1 << 20


# --------------------------------------------------------------------------------------------
# Curves and readers
# --------------------------------------------------------------------------------------------


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
    them again and again for nothing (none of them can form a cycle). Pausing it halves the time."""
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

    Raises :class:`kit.errors.UserError` (naming the file, and the line where there is one) for a
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


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One rule's two means and its verdict (pass if MRE <= 0.05 or MAE <= 0.0002)."""

    mean_relative_error: float
    mean_absolute_error: float
    n_points: int

    @property
    def passed(self) -> bool:
        return bool(self.mean_relative_error <= MRE_THRESHOLD or self.mean_absolute_error <= MAE_THRESHOLD)

    def to_dict(self) -> dict:
        return {
            "mean_relative_error": _finite_or_none(self.mean_relative_error),
            "mean_absolute_error": _finite_or_none(self.mean_absolute_error),
            "passed": self.passed,
            "n_points": self.n_points,
        }


def _finite_or_none(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None  # JSON has no NaN


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average of ``window`` points; the first points average what there is."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or not x.size:
        return x.copy()
    cumsum = np.concatenate([[0.0], np.cumsum(x)])
    end = np.arange(1, x.size + 1)
    start = np.maximum(end - window, 0)
    return (cumsum[end] - cumsum[start]) / (end - start)


@dataclass
class Comparison:
    """The result of :func:`compare_curves`; ``to_dict()`` is the ``--json`` object."""

    reference: Curve
    candidate: Curve
    alignment: str  # "step" or "position"
    steps: np.ndarray  # x of each compared point (the reference's steps, or positions)
    reference_losses: np.ndarray  # compared values after --skip, before --smooth
    candidate_losses: np.ndarray
    reference_used: np.ndarray  # what the strict figures use (smoothed when --smooth > 1)
    candidate_used: np.ndarray
    n_missing: int  # reference points the candidate lacks
    n_dropped: int  # candidate points with no reference counterpart
    n_skipped: int
    smooth: int
    skip: int
    legacy: Figures
    strict: Figures
    verdict: str = "strict"
    notes: list = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return len(self.steps)

    @property
    def relative_error(self) -> np.ndarray:
        """Signed per-point relative error of what the strict figures use."""
        return (self.candidate_used - self.reference_used) / self.reference_used

    @property
    def passed(self) -> bool:
        return (self.legacy if self.verdict == "legacy" else self.strict).passed

    @property
    def same_points(self) -> bool:
        """Whether both rules looked at the same pairs (then only the signs differ)."""
        return (
            self.legacy.n_points == self.n_points
            and self.n_skipped == 0
            and self.smooth <= 1
            and np.array_equal(self.reference_losses, self.reference.raw[: self.n_points])
            and np.array_equal(self.candidate_losses, self.candidate.raw[: self.n_points])
        )

    @property
    def disagreement(self) -> Optional[str]:
        """A plain sentence when the legacy and strict verdicts differ, else None."""
        if self.legacy.passed == self.strict.passed:
            return None
        pairing = (
            f"loss.py pairs all {self.legacy.n_points} points by position, while the strict figures use "
            f"{self.n_points} points paired by {self.alignment}"
            + (f", after skipping {self.n_skipped}" if self.n_skipped else "")
            + (f", smoothed over {self.smooth}" if self.smooth > 1 else "")
        )
        if not self.legacy.passed:  # only possible when the two rules looked at different points
            return (
                f"The two verdicts disagree: the strict figures pass but the ModelZoo rule fails, because "
                f"the two rules compare different points: {pairing}."
            )
        mre = self.legacy.mean_relative_error
        why = (
            f"the candidate sits below the reference on average (signed mean relative error {mre:+.2%}), "
            f"and any curve below the reference passes that rule"
            if mre < 0
            else f"errors of opposite sign cancel in its mean (signed mean relative error {mre:+.2%})"
        )
        return (
            f"The two verdicts disagree: the ModelZoo rule passes only because it averages signed errors: "
            f"{why}. On absolute values the candidate is off by {self.strict.mean_relative_error:.2%} on "
            f"average (threshold {MRE_THRESHOLD:.0%}) and by {self.strict.mean_absolute_error:.4g} in loss "
            f"(threshold {MAE_THRESHOLD:g}), so it fails."
            + ("" if self.same_points else f" Note also that {pairing}.")
        )

    def to_dict(self) -> dict:
        def curve(c: Curve) -> dict:
            return {
                "path": c.path,
                "format": c.format,
                "n_points": len(c),
                "has_steps": c.has_steps,
                "first_step": int(c.steps[0]),
                "last_step": int(c.steps[-1]),
                "overwritten": c.overwritten,
            }

        return {
            "n_points": self.n_points,
            "legacy": {**self.legacy.to_dict(), "alignment": "position"},
            "strict": self.strict.to_dict(),
            "passed": self.passed,
            "verdict": self.verdict,
            "alignment": self.alignment,
            "n_missing": self.n_missing,
            "n_dropped": self.n_dropped,
            "n_skipped": self.n_skipped,
            "smooth": self.smooth,
            "skip": self.skip,
            "thresholds": {"mean_relative_error": MRE_THRESHOLD, "mean_absolute_error": MAE_THRESHOLD},
            "verdicts_disagree": self.disagreement is not None,
            "disagreement": self.disagreement,
            "notes": list(self.notes),
            "reference": curve(self.reference),
            "candidate": curve(self.candidate),
        }


def _check_reference(values: np.ndarray, curve: Curve, positions: np.ndarray, raw: bool, what: str):
    """A relative error needs a finite, non-zero reference at every compared point."""
    bad = np.flatnonzero(~np.isfinite(values) | (values == 0))
    if bad.size:
        i = int(positions[bad[0]])
        value = "zero" if values[bad[0]] == 0 else str(values[bad[0]])
        raise UserError(
            f"{curve.where(i, raw=raw)}: the reference loss is {value}"
            + ("" if raw or not curve.has_steps else f" at step {curve.steps[i]}")
            + f"; {what} needs a finite, non-zero reference ({bad.size} such point(s))"
        )


def _legacy_figures(reference: Curve, candidate: Curve) -> Figures:
    """ModelZoo loss.py: every point in file order, cut to the shorter, paired by position, signed."""
    n = min(len(reference.raw), len(candidate.raw))
    r, c = reference.raw[:n], candidate.raw[:n]
    _check_reference(r, reference, np.arange(n), True, "the ModelZoo relative error")
    return Figures(float(np.mean((c - r) / r)), float(np.mean(c - r)), n)


def compare_curves(
    reference: Curve, candidate: Curve, smooth: int = 0, skip: int = 0, align: str = "auto", verdict: str = "strict"
) -> Comparison:
    """Compare ``candidate`` with ``reference`` under the ModelZoo rule and the strict rule.

    ``align``: "auto" pairs by step when both curves have steps, else by position; "step" or
    "position" force it. ``skip`` drops the first points of the paired curve (warm-up);
    ``smooth`` > 1 replaces both by a trailing moving average of that many points before the strict
    figures. The legacy figures ignore all three: they are what ModelZoo's loss.py computes.
    ``verdict`` ("strict" or "legacy") picks the rule behind ``.passed``.
    """
    if align not in ("auto", "step", "position"):
        raise UserError(f"unknown alignment {align!r}; choose auto, step or position")
    if verdict not in ("strict", "legacy"):
        raise UserError(f"unknown verdict {verdict!r}; choose strict or legacy")
    if smooth < 0 or skip < 0:
        raise UserError("--smooth and --skip take a number of points, 0 or more")
    both_have_steps = reference.has_steps and candidate.has_steps
    if align == "step" and not both_have_steps:
        lacking = reference if not reference.has_steps else candidate
        raise UserError(f"{lacking.path}: this log has no step numbers; it can only be paired by position")
    alignment = "step" if both_have_steps and align != "position" else "position"

    if alignment == "step":
        common, ri, ci = np.intersect1d(reference.steps, candidate.steps, assume_unique=True, return_indices=True)
        if not common.size:
            raise UserError(
                f"{candidate.path}: no step in common with {reference.path} (reference steps "
                f"{reference.steps[0]}..{reference.steps[-1]}, candidate steps {candidate.steps[0]}.."
                f"{candidate.steps[-1]}); use --align position to pair them by order"
            )
        steps = common
    else:
        n = min(len(reference), len(candidate))
        ri = ci = np.arange(n)
        steps = reference.steps[:n] if reference.has_steps else ri
    n_missing, n_dropped = len(reference) - len(ri), len(candidate) - len(ci)

    n_skipped = min(skip, len(ri))
    ri, ci, steps = ri[n_skipped:], ci[n_skipped:], steps[n_skipped:]
    if not len(ri):
        raise UserError(f"--skip {skip} leaves nothing to compare: only {n_skipped} points were paired")
    ref, cand = reference.losses[ri], candidate.losses[ci]
    _check_reference(ref, reference, ri, False, "a relative error")
    ref_used, cand_used = moving_average(ref, smooth), moving_average(cand, smooth)
    _check_reference(ref_used, reference, ri, False, "the smoothed relative error")
    strict = Figures(
        float(np.mean(np.abs(cand_used - ref_used) / ref_used)), float(np.mean(np.abs(cand_used - ref_used))), len(ri)
    )
    legacy = _legacy_figures(reference, candidate)

    notes = list(dict.fromkeys(reference.notes + candidate.notes))  # once each, in order
    bad = np.flatnonzero(~np.isfinite(candidate.losses[ci]))
    if bad.size:
        notes.append(
            f"{candidate.where(int(ci[bad[0]]))}: the candidate loss is {candidate.losses[ci[bad[0]]]} "
            f"({bad.size} non-finite point(s)); the figures are not numbers and the comparison fails"
        )
    return Comparison(
        reference, candidate, alignment, steps, ref, cand, ref_used, cand_used,
        n_missing, n_dropped, n_skipped, smooth, skip, legacy, strict, verdict, notes,
    )  # fmt: skip


def _verdict_word(passed: bool) -> str:
    return "pass" if passed else "fail"


def format_report(comparison: Comparison) -> str:
    """The text ``kit compare`` prints: the ModelZoo lines, the strict figures, the verdict."""
    c = comparison
    legacy, strict = c.legacy, c.strict
    # The lines ModelZoo's loss.py prints. Its source is not quoted in our references; what is known
    # (modelzoo.md, and Tecorigin's HiViT README quoting "Rule,mean_absolute_error" and "pass") is:
    # the two figure names, a "Rule" line naming the numerically smaller of the two signed figures
    # (it does not affect the verdict), then pass or fail. The exact spacing and the number printed
    # on the Rule line are our closest guess.
    rule = (
        ("mean_absolute_error", legacy.mean_absolute_error)
        if legacy.mean_absolute_error < legacy.mean_relative_error
        else ("mean_relative_error", legacy.mean_relative_error)
    )
    out = [
        f"reference: {c.reference.describe()}",
        f"candidate: {c.candidate.describe()}",
        "",
        f"ModelZoo loss.py figures (signed means; all {legacy.n_points} points paired by position):",
        f"MeanRelativeError: {legacy.mean_relative_error}",
        f"MeanAbsoluteError: {legacy.mean_absolute_error}",
        f"Rule,{rule[0]} {rule[1]}",
        _verdict_word(legacy.passed),
        "",
        f"strict figures (means of absolute values; {c.n_points} points paired by {c.alignment}, "
        f"{c.n_missing} missing from the candidate, {c.n_dropped} dropped from the candidate, "
        f"{c.n_skipped} skipped, smoothing {'window ' + str(c.smooth) if c.smooth > 1 else 'off'}):",
        f"mean |relative error|: {strict.mean_relative_error:.6g}  (pass if <= {MRE_THRESHOLD})",
        f"mean |absolute error|: {strict.mean_absolute_error:.6g}  (pass if <= {MAE_THRESHOLD})",
        _verdict_word(strict.passed),
        "",
    ]
    out += [f"note: {n}" for n in c.notes]
    if c.disagreement:
        out.append(c.disagreement)
    rule_name = "ModelZoo rule, --verdict legacy" if c.verdict == "legacy" else "strict rule"
    out.append(f"verdict: {'PASS' if c.passed else 'FAIL'} ({rule_name})")
    return "\n".join(out)


def plot_comparison(comparison: Comparison, path=None, ax=None):
    """Both curves (raw faint, smoothed bold) over the per-point relative error, verdicts in the title.

    ``ax``: draw into existing axes -- one Axes (the curves only) or two (curves, relative error);
    by default a new figure with both panels is made. ``path``: also save it there (PNG, or any
    format matplotlib knows from the extension). Axes given in place of ``path`` are taken as
    ``ax``. Returns the matplotlib Figure.
    """
    from matplotlib.figure import Figure  # lazy: `kit compare` without --plot never imports matplotlib

    if path is not None and not isinstance(path, (str, os.PathLike)):
        path, ax = None, path
    c = comparison
    if ax is None:
        fig = Figure(figsize=(9, 6.5), layout="constrained")
        ax_loss, ax_err = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    else:
        axes = list(np.atleast_1d(ax))
        ax_loss, ax_err = axes[0], (axes[1] if len(axes) > 1 else None)
        fig = ax_loss.figure
    window = c.smooth if c.smooth > 1 else DISPLAY_WINDOW
    shown = f"moving average of {window}" + ("" if c.smooth > 1 else ", display only")
    for values, name, color in ((c.reference_losses, "reference", "C0"), (c.candidate_losses, "candidate", "C1")):
        curve = c.reference if name == "reference" else c.candidate
        ax_loss.plot(c.steps, values, color=color, alpha=0.3, linewidth=0.8)
        ax_loss.plot(
            c.steps, moving_average(values, window), color=color, linewidth=2,
            label=f"{name}: {Path(curve.path).name} ({shown})",
        )  # fmt: skip
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(loc="best", fontsize="small")
    ax_loss.grid(alpha=0.3)
    ax_loss.set_title(
        f"ModelZoo rule: {_verdict_word(c.legacy.passed).upper()} (signed MRE {c.legacy.mean_relative_error:+.4f}, "
        f"MAE {c.legacy.mean_absolute_error:+.4g})\nstrict rule: {_verdict_word(c.strict.passed).upper()} "
        f"(mean |rel| {c.strict.mean_relative_error:.4f}, mean |abs| {c.strict.mean_absolute_error:.4g})",
        fontsize="medium",
    )
    xlabel = "step" if c.alignment == "step" else "point (paired by position)"
    if ax_err is not None:
        label = "(candidate - reference) / reference"
        ax_err.plot(c.steps, 100 * c.relative_error, color="C2", linewidth=1, label=label)
        for y in (MRE_THRESHOLD, -MRE_THRESHOLD):
            label = f"±{MRE_THRESHOLD:.0%}: the threshold on the mean" if y > 0 else None
            ax_err.axhline(100 * y, color="C3", linestyle="--", linewidth=1, label=label)
        ax_err.legend(loc="best", fontsize="x-small")
        ax_err.axhline(0, color="black", linewidth=0.6)
        ax_err.set_ylabel("relative error %")
        ax_err.set_xlabel(xlabel)
        ax_err.grid(alpha=0.3)
    else:
        ax_loss.set_xlabel(xlabel)
    if path is not None:
        _save_figure(fig, Path(path))
    return fig


def _save_figure(fig, path: Path) -> None:
    from kit.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", dpi=120)
    except ValueError as e:  # an extension matplotlib cannot write
        raise UserError(f"{path}: cannot write the plot ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot write the plot ({e.strerror or e})") from None


# --------------------------------------------------------------------------------------------
# CLI: kit compare REFERENCE CANDIDATE
# --------------------------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare a candidate training-loss curve with a reference run. Prints ModelZoo loss.py's signed "
        "figures and the strict figures (the same means over absolute values, same thresholds: pass if "
        "mean relative error <= 0.05 or mean absolute error <= 0.0002). Exit code 0 pass, 1 fail, 2 bad input."
    )
    parser.add_argument("reference", metavar="REFERENCE", help="the reference run's log (e.g. the CUDA run)")
    parser.add_argument("candidate", metavar="CANDIDATE", help="the candidate run's log (e.g. the SDAA run)")
    formats = "; ".join(f"{k} = {r.describe}" for k, r in READERS.items())
    fmt = {"choices": list(READERS), "metavar": "FMT"}
    parser.add_argument("--format", **fmt, help=f"force the format of both logs: {formats}")
    parser.add_argument("--reference-format", **fmt, help="force the reference's format")
    parser.add_argument("--candidate-format", **fmt, help="force the candidate's format")
    parser.add_argument(
        "--align", choices=("auto", "step", "position"), default="auto",
        help="pair points by step (auto: when both logs have steps) or by position",
    )  # fmt: skip
    parser.add_argument(
        "--smooth", type=_count, default=0, metavar="N",
        help="moving average of N points before the strict figures (default off)",
    )  # fmt: skip
    parser.add_argument(
        "--skip", type=_count, default=0, metavar="N",
        help="leave out the first N paired points, e.g. warm-up (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--verdict", choices=("strict", "legacy"), default="strict",
        help="which rule sets the exit code (default strict; legacy = ModelZoo loss.py's signed rule)",
    )  # fmt: skip
    parser.add_argument("--plot", metavar="FILE.png", help="draw both curves and the relative error into this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")


def run(args: argparse.Namespace) -> int:
    reference = read_curve(args.reference, args.reference_format or args.format)
    candidate = read_curve(args.candidate, args.candidate_format or args.format)
    comparison = compare_curves(reference, candidate, args.smooth, args.skip, args.align, args.verdict)
    if args.plot:
        plot_comparison(comparison, args.plot)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print(format_report(comparison))
        if args.plot:
            print(f"plot: {args.plot}")
    sys.stdout.flush()
    return 0 if comparison.passed else 1
