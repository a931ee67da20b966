"""The learners' working copies of the notebooks (``make lab``), and merging the teacher's fixes into them.

Why: ``make lab`` gives each learner a copy in ``lab/`` so that the repository stays clean; when the teacher fixes a
notebook during the day, the learner must not have to delete their copy (and their answers) to get the fix. So each
copy's origin is recorded -- the exact upstream notebook it was made from, in ``lab/.upstream/`` -- and
``make lab-update`` merges what changed upstream since then into the copy with nbdime's three-way notebook merge
(base = that record, local = the learner's copy, remote = ``notebooks/``): the learner's edits, answers and outputs
are kept, the teacher's changes come in. Where both changed the same thing, nbdime's conflict markers are left in
the copy (``<<<<<<< local`` ... ``>>>>>>> remote`` in the cell) and the conflict is reported by notebook and cell,
never resolved silently. Before a copy is rewritten it is kept as ``lab/.backup/<name>.<time>.ipynb``.

    python -m kit.workshop.labcopy copy   LAB_DIR   # make lab: new copies, and a line per notebook that changed
    # upstream
    python -m kit.workshop.labcopy update LAB_DIR   # make lab-update: merge; exit 1 if any conflict was left to resolve
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from kit.core.atomic import atomic_write_text

__all__ = ["record", "base_of", "lab_text", "copy", "conflicts", "merge_one", "update"]

UPSTREAM, BACKUP = ".upstream", ".backup"


def record(lab: Path, name: str, text: str) -> None:
    """Remember ``text`` as the upstream version the copy ``lab/name`` now derives from."""
    atomic_write_text(lab / UPSTREAM / name, text, what="the record of the copy's upstream version")


def base_of(lab: Path, name: str) -> Optional[str]:
    path = lab / UPSTREAM / name
    return path.read_text(encoding="utf-8") if path.exists() else None


def lab_text(notebook: Path) -> str:
    """The learner's version of an upstream notebook, as text: its solution cells held back (kit.workshop.solutions).
    Copies, records and merges all use this form, so a merge sees only the teacher's changes."""
    import nbformat

    from kit.workshop.solutions import lab_notebook

    return nbformat.writes(lab_notebook(nbformat.read(str(notebook), as_version=4)))


def copy(lab: Path, src: Path, say: Callable[[str], None] = print) -> list[str]:
    """``make lab``: copy each new notebook (and record it); name each copy whose upstream changed since.
    Returns the names that changed upstream."""
    lab.mkdir(parents=True, exist_ok=True)
    changed = []
    for nb in sorted(src.glob("*.ipynb")):
        target, text = lab / nb.name, lab_text(nb)
        if not target.exists():
            atomic_write_text(target, text, what="your copy of the notebook")
            record(lab, nb.name, text)
            say(f"{target}: your copy of {nb}")
        elif (base := base_of(lab, nb.name)) is None:
            say(f"{target}: made before copies were recorded, so it cannot be merged; delete it for the new one")
        elif base != text:
            changed.append(nb.name)
            say(f"{target}: {nb} has changed since your copy; `make lab-update` merges the change in, keeping "
                f"your answers")
    return changed


def conflicts(decisions) -> list[str]:
    """Where nbdime left a conflict: ``cell N`` (1-based, as in the copy before the merge), or its path."""
    where = []
    for d in decisions:
        if not d.conflict:
            continue
        path = list(d.common_path)
        if len(path) >= 2 and path[0] == "cells":
            where.append(f"cell {int(path[1]) + 1}")
        elif path == ["cells"]:  # cells added, removed or moved on both sides at the same place
            keys = sorted({e.key for e in list(d.local_diff or []) + list(d.remote_diff or []) if hasattr(e, "key")})
            where.append("cells " + ", ".join(str(int(k) + 1) for k in keys) + " (added or removed on both sides)")
        else:
            where.append("/".join(str(p) for p in path) or "the notebook")
    return list(dict.fromkeys(where))


def merge_one(lab: Path, src: Path, name: str) -> tuple[str, list[str]]:
    """Merge upstream's change to ``name`` into the learner's copy; ``(what happened, conflicts)``."""
    import nbformat
    from nbdime.merging import merge_notebooks

    target, remote_text = lab / name, lab_text(src / name)
    base_text = base_of(lab, name)
    if base_text is None:
        return "not merged: no record of the version it was copied from (delete it for the new one)", []
    if base_text == remote_text:
        return "up to date", []
    read = lambda text: nbformat.reads(text, as_version=4)  # noqa: E731
    local_text = target.read_text(encoding="utf-8")
    merged, decisions = merge_notebooks(read(base_text), read(local_text), read(remote_text), _merge_args())
    stamp, n = time.strftime("%Y%m%d-%H%M%S"), 1
    backup = lab / BACKUP / f"{Path(name).stem}.{stamp}.ipynb"
    while backup.exists():  # two merges in one second: never overwrite an earlier backup
        n += 1
        backup = lab / BACKUP / f"{Path(name).stem}.{stamp}-{n}.ipynb"
    backup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, backup)  # the copy as the learner left it, before anything is rewritten
    atomic_write_text(target, nbformat.writes(merged), what="your merged copy of the notebook")
    record(lab, name, remote_text)
    return f"merged (your copy before: {backup})", conflicts(decisions)


def _merge_args():
    """nbdime's own defaults for ``nbmerge``: conflicts in sources and outputs inline, with markers."""
    from nbdime import nbmergeapp

    args = nbmergeapp._build_arg_parser().parse_args(["base", "local", "remote"])
    args.use_color = False  # plain markers in the cell, not terminal or HTML colour codes
    return args


def update(lab: Path, src: Path, say: Callable[[str], None] = print) -> dict[str, list[str]]:
    """``make lab-update``: merge every changed notebook; returns ``{name: conflicts}`` for those left with any."""
    left = {}
    for nb in sorted(src.glob("*.ipynb")):
        if not (lab / nb.name).exists():
            continue
        what, where = merge_one(lab, src, nb.name)
        if what != "up to date":
            say(f"{lab / nb.name}: {what}")
        if where:
            left[nb.name] = where
            say(f"{lab / nb.name}: CONFLICT in {', '.join(where)}: both versions are in the cell, between "
                f"<<<<<<< local and >>>>>>> remote; keep what you want and delete the markers")
    return left


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.workshop.labcopy", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("copy", "update"))
    parser.add_argument("lab", type=Path, help="the working copies' folder (make lab's LAB_DIR)")
    parser.add_argument("--notebooks", type=Path, default=Path(__file__).resolve().parents[2] / "notebooks")
    args = parser.parse_args(argv)
    if not args.notebooks.is_dir():
        print(f"kit.workshop.labcopy: error: no notebooks folder at {args.notebooks}", file=sys.stderr)
        return 2
    if args.action == "copy":
        copy(args.lab, args.notebooks)
        return 0
    return 1 if update(args.lab, args.notebooks) else 0


if __name__ == "__main__":
    sys.exit(main())
