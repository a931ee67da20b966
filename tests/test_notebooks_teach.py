"""The notebooks as lessons: every exercise has a solution that the tests run.

A solution is either a code cell after the exercises, tagged ``solution``, collapsed in JupyterLab
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

#: Notebooks whose solutions are still being written; remove a name once its solutions have landed.
SOLUTIONS_PENDING = {"02_model_anatomy.ipynb", "03_training.ipynb"}

_SOLUTION_HEAD = re.compile(r"# Solution to exercise (\d+)\b")


def exercise_numbers(nb) -> tuple[int, list[int]]:
    """The index of the markdown cell that lists the exercises (after ``**Exercises**``) and their numbers."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and "**Exercises**" in cell.source:
            listed = cell.source.split("**Exercises**", 1)[1]
            return index, [int(n) for n in re.findall(r"^(\d+)\. ", listed, re.MULTILINE)]
    raise AssertionError("no markdown cell with an **Exercises** list")


def is_solution(cell) -> bool:
    return "solution" in cell.metadata.get("tags", [])


@pytest.mark.parametrize("name", workshop.NOTEBOOKS)
def test_every_exercise_has_a_solution(name):
    if name in SOLUTIONS_PENDING:
        pytest.skip(f"{name}: solutions pending (tests/test_notebooks_teach.py SOLUTIONS_PENDING)")
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    where, numbers = exercise_numbers(nb)
    assert numbers and numbers == list(range(1, len(numbers) + 1)), f"{name}: exercises numbered {numbers}"
    assert not any(is_solution(c) for c in nb.cells[:where]), f"{name}: a solution cell before the exercises"
    solved = set()
    for cell in nb.cells[where + 1 :]:
        if not is_solution(cell):
            continue
        head = _SOLUTION_HEAD.match(cell.source)
        assert cell.cell_type == "code" and head, f"{name}: a solution cell is code starting '# Solution to exercise N'"
        collapsed = cell.metadata.get("jupyter", {}).get("source_hidden") is True
        assert collapsed, f"{name}: the solution to exercise {head[1]} is not collapsed (jupyter.source_hidden)"
        solved.add(int(head[1]))
    stem = Path(name).stem
    missing = [n for n in numbers if n not in solved and not list(SOLUTIONS.glob(f"{stem}_exercise_{n}.*"))]
    assert not missing, f"{name}: no solution to exercise(s) {missing}"
    assert solved <= set(numbers), f"{name}: solutions to exercises that do not exist: {sorted(solved - set(numbers))}"
