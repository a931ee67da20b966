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

import kit.workshop as workshop

ROOT = Path(__file__).resolve().parents[2]
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


# -- what a learner meets: one working folder, solutions that wait, short cells ---------------------------------------

#: A code cell longer than this is a wall of code, not one idea (the house style: ~15 lines, then a check).
MAX_CODE_LINES = 25
#: Where every exercise's terminal command runs: the notebooks' own folder (``lab/`` for a learner's copy, one level
#: below the repository as ``notebooks/`` is), so a relative path starts with ``../``.
NOTEBOOK_FOLDER = ROOT / "notebooks"
#: What the notebooks or the exercises themselves write (data_dir, out_dir and the learner's own outputs): these need
#: not exist in a fresh clone.
MADE_BY_THE_WORKSHOP = ("../data/", "../runs/")
_CODE_SPAN = re.compile(r"``?([^`]+)``?")
_PATHLIKE = re.compile(r"^(\.\.?/|[\w.-]+/)[\w.*{},<>/-]*$")


def exercise_texts(nb) -> list[str]:
    """The text a learner follows for the exercises: the exercise cells' code spans and indented commands, and the
    comment lines of the solutions (which show the terminal equivalent)."""
    texts = []
    for index in set(exercises(nb).values()):
        source = nb.cells[index].source
        source = source.split("**Exercises**", 1)[-1]  # a summary's list: only what follows the heading
        texts += _CODE_SPAN.findall(source)
        texts += [line for line in source.splitlines() if line.startswith("    ")]
    for cell in nb.cells:
        if is_solution(cell):
            texts += [line for line in cell.source.splitlines() if line.lstrip().startswith("#")]
    return texts


def relative_paths(text: str) -> list[str]:
    tokens = (t.strip("`'\",;:()[]") for t in text.replace("\\", " ").split())
    return [t for t in tokens if "/" in t and not t.startswith(("/", "http")) and _PATHLIKE.match(t)
            and not t.endswith("/") or t.startswith("../")]


@pytest.mark.parametrize("name", workshop.NOTEBOOKS)
def test_exercise_paths_work_from_the_notebooks_folder(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    bugs = nbformat.read(ROOT / "notebooks" / "06_debugging_a_port.ipynb", as_version=4)
    bug_source = "\n".join(c.source for c in bugs.cells if c.cell_type == "code")
    for text in exercise_texts(nb):
        for path in relative_paths(text):
            if "(" in path or "<" in path:
                continue  # an expression or a pattern (train/<wnid>), not a path to type
            assert path.startswith("../"), (
                f"{name}: '{path}' in an exercise is relative to some other folder; every exercise runs in the "
                f"notebooks' folder, where '../data/digits' is the dataset")
            if path.startswith(MADE_BY_THE_WORKSHOP):
                debugging = re.match(r"\.\./runs/notebooks/debugging/(\w+)", path)
                if debugging:  # a run notebook 6 makes: one of its bugs, by name
                    assert f'"{debugging[1].replace("_", " ")}"' in bug_source, f"{name}: no run makes {path}"
                continue
            assert (NOTEBOOK_FOLDER / path).exists(), f"{name}: '{path}' in an exercise does not exist"


@pytest.mark.parametrize("name", workshop.NOTEBOOKS)
def test_solutions_wait_in_the_lab_copy(name):
    from kit.workshop import solutions

    nb = solutions.lab_notebook(nbformat.read(ROOT / "notebooks" / name, as_version=4))
    hidden = [c for c in nb.cells if solutions.is_hidden(c)]
    assert any(is_solution(c) for c in hidden), f"{name}: no solution cell"
    for cell in hidden:
        assert cell.source.startswith(solutions.MAGIC + "\n"), f"{name}: a solution that Run All would show"


def test_the_solution_magic_holds_back_once(monkeypatch, capsys):
    import IPython

    from kit.workshop import solutions

    ran = []
    shell = type("Shell", (), {"run_cell": lambda self, cell, **kwargs: ran.append(cell)})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setattr(solutions, "_asked", set())
    solutions.solution("", "print('the answer')")
    assert ran == [] and solutions.HELD_BACK in capsys.readouterr().out
    solutions.solution("", "print('the answer')")
    assert ran == ["print('the answer')"]


def test_make_lab_copies_hold_solutions_back(tmp_path):
    """`make lab` copies through kit.workshop.labcopy, which writes (and records, for lab-update) the held-back form."""
    from kit.workshop import labcopy, solutions

    assert "-m kit.workshop.labcopy copy" in (ROOT / "Makefile").read_text()
    labcopy.copy(tmp_path, ROOT / "notebooks", say=lambda line: None)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        copy = nbformat.read(tmp_path / path.name, as_version=4)
        hidden = [c for c in copy.cells if solutions.is_hidden(c)]
        assert all(c.source.startswith(solutions.MAGIC) for c in hidden), path.name
        assert labcopy.base_of(tmp_path, path.name) == (tmp_path / path.name).read_text(encoding="utf-8")


def test_the_mystery_waits_for_the_learner():
    nb = nbformat.read(ROOT / "notebooks" / "06_debugging_a_port.ipynb", as_version=4)
    reveal = [c for c in nb.cells if "the planted bug was" in c.source]
    assert reveal and all("answer" in c.metadata.get("tags", []) for c in reveal)


@pytest.mark.parametrize("name", workshop.NOTEBOOKS)
def test_code_cells_are_short(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    long = {i: len(c.source.splitlines()) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CODE_LINES}
    assert not long, f"{name}: code cells over {MAX_CODE_LINES} lines (cell: lines): {long}"
