"""Solutions that a learner's Run All does not give away, and the learner's copy of the notebooks (``make lab``).

In ``notebooks/`` a solution is an ordinary code cell tagged ``solution`` (an answer revealed after a question,
such as notebook 6's mystery, is tagged ``answer``): papermill and nbval execute it with the rest, so the tests
prove every solution works. The learner works on a copy (``make lab`` -> ``lab/``), made by :func:`lab_copy`,
in which each such cell starts with the cell magic ``%%solution``. The magic (:func:`register`, done when a
notebook imports ``kit.workshop.notebook``) holds the cell back the first time it runs in a kernel and says so; run
again, the cell runs. Run All thus shows every exercise without its answer, and one more Ctrl+Enter on a
solution shows it.

``python -m kit.workshop.solutions SRC_DIR LAB_DIR`` copies every notebook of SRC_DIR that LAB_DIR does not have yet,
and names the ones that changed since they were copied (a learner's copy is never overwritten).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

__all__ = ["HIDDEN_TAGS", "MAGIC", "HELD_BACK", "solution", "register", "is_hidden", "lab_notebook", "lab_copy"]

#: The tags of cells the learner's copy holds back until asked twice.
HIDDEN_TAGS = ("solution", "answer")
MAGIC = "%%solution"
HELD_BACK = ("(A solution: try the exercise first. Run this cell again, Ctrl+Enter, to see it.)")

_asked: set[str] = set()


def solution(line: str, cell: str) -> None:
    """The ``%%solution`` cell magic: the first run of a cell's text in this kernel holds it back, later ones run it."""
    key = hashlib.sha1(cell.encode()).hexdigest()
    if key not in _asked:
        _asked.add(key)
        print(HELD_BACK)
        return
    from IPython import get_ipython

    get_ipython().run_cell(cell, store_history=False)


def register() -> bool:
    """Register ``%%solution`` in the running IPython kernel, if there is one (True if registered)."""
    try:
        from IPython import get_ipython
    except ImportError:  # no IPython: a script, not a notebook
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.register_magic_function(solution, magic_kind="cell", magic_name=MAGIC.lstrip("%"))
    return True


def is_hidden(cell) -> bool:
    return cell.get("cell_type") == "code" and any(t in cell.get("metadata", {}).get("tags", []) for t in HIDDEN_TAGS)


def lab_notebook(nb):
    """The learner's version of a notebook (changed in place and returned): hidden cells get the magic."""
    for cell in nb.cells:
        if is_hidden(cell) and not cell.source.startswith(MAGIC):
            cell.source = f"{MAGIC}\n{cell.source}"
    return nb


def lab_copy(src: str | Path, dst: str | Path) -> Path:
    """Write the learner's copy of the notebook ``src`` to ``dst``."""
    import nbformat

    nb = lab_notebook(nbformat.read(str(src), as_version=4))
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dst))
    return Path(dst)


def main(argv: list[str] | None = None) -> int:
    src_dir, lab_dir = (Path(a) for a in (argv if argv is not None else sys.argv[1:]))
    for nb in sorted(src_dir.glob("*.ipynb")):
        copy = lab_dir / nb.name
        if not copy.exists():
            lab_copy(nb, copy)
            print(f"{copy}: your copy of {nb}")
        elif nb.stat().st_mtime > copy.stat().st_mtime:
            print(f"{copy}: {nb} has changed since you copied it (delete {copy} for the new one)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
