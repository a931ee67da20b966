"""`make lab` / `make lab-update`: the teacher's fix merges into a learner's copy with nbdime, answers kept; a
conflict is reported by notebook and cell, with a backup, and nothing is lost."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("nbdime")  # the lab extra (make setup installs it)

import nbformat  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

from kit.workshop import labcopy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def lesson() -> nbformat.NotebookNode:
    return new_notebook(cells=[
        new_markdown_cell("# Lesson\nWhat you will learn: tensors."),
        new_code_cell("import math\nx = 2"),
        new_markdown_cell("## Exercises\n1. Compute the square root of x."),
        new_code_cell("# your answer here"),
        new_code_cell("print('done')"),
    ])


def write(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb))


def read(path: Path):
    return nbformat.read(path, as_version=4)


@pytest.fixture
def room(tmp_path):
    """notebooks/ with one lesson; the learner's copy made by `make lab` (recorded)."""
    src, lab = tmp_path / "notebooks", tmp_path / "lab"
    write(src / "00_lesson.ipynb", lesson())
    lines = []
    labcopy.copy(lab, src, lines.append)
    assert lines == [f"{lab / '00_lesson.ipynb'}: your copy of {src / '00_lesson.ipynb'}"]
    assert (lab / labcopy.UPSTREAM / "00_lesson.ipynb").read_text() == (src / "00_lesson.ipynb").read_text()
    return src, lab


def learner_works(lab: Path) -> None:
    """The learner fills the exercise (with its output) and edits another cell."""
    nb = read(lab / "00_lesson.ipynb")
    nb.cells[3].source = "print(math.sqrt(x))"
    nb.cells[3].outputs = [new_output("stream", name="stdout", text="1.4142135623730951\n")]
    nb.cells[3].execution_count = 3
    nb.cells[4].source = "print('done, and I understood it')"
    write(lab / "00_lesson.ipynb", nb)


def test_an_upstream_fix_merges_in_and_the_learners_answers_stay(room):
    src, lab = room
    learner_works(lab)
    before = (lab / "00_lesson.ipynb").read_text()
    fixed = read(src / "00_lesson.ipynb")  # the teacher edits the file (cell ids stay)
    fixed.cells[0].source = "# Lesson\nWhat you will learn: tensors and their shapes."  # a markdown fix
    fixed.cells[1].source = "import math\nx = 2.0  # a float, as the exercise expects"  # a code fix
    write(src / "00_lesson.ipynb", fixed)

    lines = []
    assert labcopy.copy(lab, src, lines.append) == ["00_lesson.ipynb"]  # what `make lab` says
    assert "make lab-update" in lines[0] and (lab / "00_lesson.ipynb").read_text() == before  # only said

    lines = []
    assert labcopy.update(lab, src, lines.append) == {}
    merged = read(lab / "00_lesson.ipynb")
    assert [c.source for c in merged.cells] == [fixed.cells[0].source, fixed.cells[1].source,
                                                lesson().cells[2].source, "print(math.sqrt(x))",
                                                "print('done, and I understood it')"]
    assert merged.cells[3].outputs[0]["text"] == "1.4142135623730951\n"  # the learner's output too
    backups = list((lab / labcopy.BACKUP).glob("00_lesson.*.ipynb"))
    assert len(backups) == 1 and backups[0].read_text() == before and "merged" in lines[0]
    assert (lab / labcopy.UPSTREAM / "00_lesson.ipynb").read_text() == (src / "00_lesson.ipynb").read_text()
    assert labcopy.update(lab, src, lines.append) == {}  # nothing new upstream: nothing touched
    assert len(list((lab / labcopy.BACKUP).iterdir())) == 1


def test_a_conflicting_edit_is_reported_by_cell_with_a_backup_and_nothing_lost(room):
    src, lab = room
    learner_works(lab)
    before = (lab / "00_lesson.ipynb").read_text()
    fixed = read(src / "00_lesson.ipynb")
    fixed.cells[4].source = "print('all done')"  # the cell the learner edited too
    write(src / "00_lesson.ipynb", fixed)

    lines = []
    assert labcopy.update(lab, src, lines.append) == {"00_lesson.ipynb": ["cell 5"]}
    assert any("CONFLICT in cell 5" in line and "00_lesson.ipynb" in line for line in lines), lines
    merged = read(lab / "00_lesson.ipynb")
    text = "\n".join(c.source for c in merged.cells)
    assert "print('done, and I understood it')" in text and "print('all done')" in text  # both, marked
    assert "<<<<<<< local" in text and ">>>>>>> remote" in text and "<span" not in text
    assert merged.cells[3].source == "print(math.sqrt(x))"  # the rest of the learner's work is untouched
    [backup] = (lab / labcopy.BACKUP).glob("00_lesson.*.ipynb")
    assert backup.read_text() == before


def test_the_module_command_exit_codes(room, tmp_path, capsys):
    src, lab = room

    def run(*argv):
        code = labcopy.main(list(argv))
        out, err = capsys.readouterr()
        return argparse.Namespace(returncode=code, stdout=out, stderr=err)

    r = run("update", str(lab), "--notebooks", str(src))
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr  # up to date: silent
    nb = json.loads((lab / "00_lesson.ipynb").read_text())
    nb["cells"][4]["source"] = "mine"
    (lab / "00_lesson.ipynb").write_text(json.dumps(nb))
    fixed = read(src / "00_lesson.ipynb")
    fixed.cells[4].source = "theirs"
    write(src / "00_lesson.ipynb", fixed)
    r = run("update", str(lab), "--notebooks", str(src))
    assert r.returncode == 1 and "CONFLICT in cell 5" in r.stdout, r.stdout + r.stderr
    r = run("update", str(lab), "--notebooks", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_make_lab_and_lab_update_go_through_kit_labcopy():
    import re

    text = (ROOT / "Makefile").read_text()
    lab = re.search(r"^lab:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    update = re.search(r"^lab-update:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    assert "-m kit.workshop.labcopy copy $(LAB_DIR)" in lab and "-m kit.workshop.labcopy update $(LAB_DIR)" in update


def test_a_copy_without_a_record_is_named_and_left_alone(room):
    src, lab = room
    (lab / labcopy.UPSTREAM / "00_lesson.ipynb").unlink()  # a copy made before copies were recorded
    learner_works(lab)
    before = (lab / "00_lesson.ipynb").read_text()
    lines = []
    labcopy.copy(lab, src, lines.append)
    assert len(lines) == 1 and "cannot be merged" in lines[0]
    assert labcopy.update(lab, src, lines.append) == {} and "no record" in lines[-1]
    assert (lab / "00_lesson.ipynb").read_text() == before and not (lab / labcopy.BACKUP).exists()


def test_two_merges_in_one_second_keep_both_backups(room, monkeypatch):
    src, lab = room
    monkeypatch.setattr(labcopy.time, "strftime", lambda fmt: "20260101-000000")
    for text in ("first fix", "second fix"):
        learner_works(lab)
        fixed = read(src / "00_lesson.ipynb")
        fixed.cells[0].source = text
        write(src / "00_lesson.ipynb", fixed)
        assert labcopy.update(lab, src, lambda line: None) == {}
    assert sorted(p.name for p in (lab / labcopy.BACKUP).iterdir()) == [
        "00_lesson.20260101-000000-2.ipynb", "00_lesson.20260101-000000.ipynb"]
