"""Annotation lists and ``classes.txt``: the one reader and the one writer of the format.

::

    ROOT/meta/train.txt      "<wnid>/<file> <label>" per line, relative to ROOT/train/
    ROOT/meta/val.txt        the same, relative to ROOT/val/
    ROOT/meta/classes.txt    "<wnid>[ <words>]" per line, in label order (line 1 is label 0)

A list line is a path and a label separated by whitespace; the label is the last word, a whole
number >= 0, so the path may hold spaces (mmpretrain splits the same way). Blank lines are skipped;
any other line that does not fit is an error naming ``file:line`` and what was expected. Lists and
``classes.txt`` are written in UTF-8 through :mod:`kit.core.atomic`, so a list that exists is complete.

Two programs read these files. The trainer (:func:`kit.data.loaders.find_split`) reads the lists instead of
the class folders for the reason mmpretrain does: listing 1.28 M files walks every folder of the
train set before the first step, where reading one text file does not. ``data_prep verify`` reads
them to check that the folders hold exactly what the lists say, with the labels ``classes.txt``
gives; it needs the class of every line, hence ``by_class``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from kit.core.atomic import atomic_write_text
from kit.core.errors import UserError

_LABEL = re.compile(r"[0-9]+")


def list_file(root: str | Path, split: str) -> Path:
    """``ROOT/meta/<split>.txt``."""
    return Path(root) / "meta" / f"{split}.txt"


def classes_file(root: str | Path) -> Path:
    """``ROOT/meta/classes.txt``."""
    return Path(root) / "meta" / "classes.txt"


def read_list(path: str | Path, by_class: bool = False) -> list[tuple[str, int]]:
    """The ``(relative path, label)`` pairs of an annotation list, in file order.

    ``by_class``: every path must be ``<wnid>/<file>`` (one class folder, then the file name).
    A line that does not fit is a :class:`UserError` naming ``file:line``.
    """
    expected = "'<wnid>/<file> <label>'" if by_class else "'<relative/path> <label>'"
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rsplit(None, 1)
            rel = parts[0].strip()
            ok = len(parts) == 2 and _LABEL.fullmatch(parts[1]) is not None
            if ok and by_class:
                ok = len(rel.split("/")) == 2 and all(rel.split("/"))
            if not ok:
                raise UserError(
                    f"{path}:{lineno}: expected {expected} with a whole-number label >= 0, found {line.strip()!r}"
                )
            entries.append((rel, int(parts[1])))
    return entries


def _class_lines(root: str | Path) -> list[list[str]] | None:
    path = classes_file(root)
    if not path.is_file():
        return None
    return [line.split(maxsplit=1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_classes(root: str | Path) -> list[str] | None:
    """The wnids of ``meta/classes.txt`` in label order, or None where there is no such file."""
    lines = _class_lines(root)
    return None if lines is None else [words[0] for words in lines]


def read_words(root: str | Path) -> dict[str, str]:
    """``{wnid: words}`` for the lines of ``meta/classes.txt`` that have words after the wnid."""
    return {words[0]: words[1] for words in _class_lines(root) or () if len(words) == 2}


def write_list(path: str | Path, entries: Iterable[tuple[str, int]]) -> int:
    """Write ``(relative path, label)`` pairs as an annotation list; returns the number of lines."""
    lines = []
    for rel, label in entries:
        if not rel or rel != rel.strip() or "\n" in rel or "\r" in rel:
            raise UserError(f"{path}: cannot list {rel!r}: a path must not be empty, begin or end with a space "
                            "or hold a line break")
        if int(label) < 0:
            raise UserError(f"{path}: cannot list {rel!r} with the negative label {label}")
        lines.append(f"{rel} {int(label)}\n")
    atomic_write_text(path, "".join(lines))
    return len(lines)


def write_classes(root: str | Path, classes: Iterable[str], words: dict[str, str] | None = None) -> None:
    """Write ``meta/classes.txt``: one wnid per line in label order, with its words where ``words`` has them."""
    words = words or {}
    atomic_write_text(classes_file(root), "".join(f"{w} {words[w]}\n" if w in words else f"{w}\n" for w in classes))
