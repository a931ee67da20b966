"""Short modules with one job: no module in kit/ or data_prep/ over 500 lines, no function over 100.

Why a test and not a contract: `lint-imports` (make test, pyproject.toml's [tool.importlinter]) checks which
module may import which, but not size, and size is how a module with two jobs shows first. The data tables are
excepted by name, since a table reads best whole: the recipe table of kit.config (one builder per recipe family,
and the registry) and RECIPE_SCHEMA. Their lines do not count toward their module's 500 either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100

#: The data tables, by package folder and top-level name (a table may move between the package's modules).
DATA_TABLES = {
    "kit/config": {"_hivit_in1k", "_cait_s24_in1k", "_workshop", "RECIPES", "RECIPE_SCHEMA"},
}

MODULES = sorted(p for top in ("kit", "data_prep") for p in (ROOT / top).rglob("*.py") if "assets" not in p.parts)


def _tables(path: Path, tree: ast.Module) -> dict[str, ast.stmt]:
    """The top-level statements of ``path`` that are excepted data tables, by name."""
    names = DATA_TABLES.get(path.parent.relative_to(ROOT).as_posix(), set())
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            targets = [node.name]
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        found.update((name, node) for name in targets if name in names)
    return found


def _span(node: ast.AST) -> int:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return node.end_lineno - first + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_is_short_and_so_are_its_functions(path):
    source = path.read_text()
    tree = ast.parse(source)
    tables = _tables(path, tree)
    lines = len(source.splitlines()) - sum(_span(node) for node in tables.values())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines (data tables {sorted(tables)} not counted)"
    excepted = set(map(id, tables.values()))
    long = [
        f"{node.name} (l.{node.lineno}): {_span(node)} lines"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and id(node) not in excepted
        and _span(node) > MAX_FUNCTION_LINES
    ]
    assert not long, long


def test_every_excepted_table_exists():
    """An exception for a table that is gone would excuse whatever takes its name next."""
    found = set()
    for folder, names in DATA_TABLES.items():
        for path in (ROOT / folder).glob("*.py"):
            found |= {(folder, name) for name in _tables(path, ast.parse(path.read_text()))}
    expected = {(folder, name) for folder, names in DATA_TABLES.items() for name in names}
    assert found == expected, sorted(expected - found)
