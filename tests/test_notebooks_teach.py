"""The notebooks as lessons: every exercise has a solution that the tests run.

Exercises are set one by one in their section (``**Exercise N.**``) or listed at the end (``**Exercises**``). A
solution is either a code cell after its exercise, tagged ``solution``, collapsed in JupyterLab
(``metadata.jupyter.source_hidden``) and starting with ``# Solution to exercise N`` -- nbval executes it with the
rest of the notebook, so a solution that stops working fails ``make test`` -- or a file
``notebooks/solutions/<notebook stem>_exercise_N.<ext>``, which then needs a test of its own that runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from kit import workshop

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "notebooks" / "solutions"

_SOLUTION_HEAD = re.compile(r"# Solution to exercise (\d+)\b")


_INLINE_EXERCISE = re.compile(r"\*\*Exercise (\d+)\.\*\*")


def exercises(nb) -> dict[int, int]:
    """``{exercise number: index of the markdown cell that sets it}``: exercises set one by one in their section
    (a cell starting ``**Exercise N.**``) or listed together after ``**Exercises**``."""
    found: dict[int, int] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        inline = _INLINE_EXERCISE.match(cell.source)
        if inline:
            found[int(inline[1])] = index
        elif "**Exercises**" in cell.source:
            listed = cell.source.split("**Exercises**", 1)[1]
            for n in re.findall(r"^(\d+)\. ", listed, re.MULTILINE):
                found.setdefault(int(n), index)
    return found


def is_solution(cell) -> bool:
    return "solution" in cell.metadata.get("tags", [])


@pytest.mark.parametrize("name", workshop.NOTEBOOKS)
def test_every_exercise_has_a_solution(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    where = exercises(nb)
    numbers = sorted(where)
    assert numbers and numbers == list(range(1, len(numbers) + 1)), f"{name}: exercises numbered {numbers}"
    solved = set()
    for index, cell in enumerate(nb.cells):
        if not is_solution(cell):
            continue
        head = _SOLUTION_HEAD.match(cell.source)
        assert cell.cell_type == "code" and head, f"{name}: a solution cell is code starting '# Solution to exercise N'"
        number = int(head[1])
        assert number in where, f"{name}: a solution to exercise {number}, which does not exist"
        assert index > where[number], f"{name}: the solution to exercise {number} comes before the exercise"
        collapsed = cell.metadata.get("jupyter", {}).get("source_hidden") is True
        assert collapsed, f"{name}: the solution to exercise {number} is not collapsed (jupyter.source_hidden)"
        solved.add(number)
    stem = Path(name).stem
    missing = [n for n in numbers if n not in solved and not list(SOLUTIONS.glob(f"{stem}_exercise_{n}.*"))]
    assert not missing, f"{name}: no solution to exercise(s) {missing}"
