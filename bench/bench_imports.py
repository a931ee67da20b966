"""How long does a command take to say its ``--help``? (Goal: < 0.5 s for ``kit compare --help`` and
``python -m data_prep --help``.)

A learner types ``--help`` first, and ``kit compare`` reads text logs: neither should pay for torch and timm
(a few seconds on a workshop laptop). Times, in the same run and each as the best of ``--repeat`` fresh
processes:

* baseline: ``python -c pass`` (the interpreter's own start);
* ``python -m kit --help``, ``python -m kit compare --help``, ``python -m kit align compare --help``,
  ``python -m data_prep --help``.

Prints the seconds, the ratio to the baseline, whether torch was imported (read off ``-X importtime`` in one
more run of each) and, with ``--importtime K``, the K slowest top-level imports of each command.

    python bench/bench_imports.py [--repeat R] [--importtime K] [--tree PATH]

``--tree`` measures another checkout of the kit with this interpreter (docs/results.md: before and after the
packages of issue #26, ``git worktree add /tmp/before 0e8855d``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 0.5

#: label -> the interpreter's arguments; the first one is the baseline
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "kit --help": ["-m", "kit", "--help"],
    "kit compare --help": ["-m", "kit", "compare", "--help"],
    "kit align compare --help": ["-m", "kit", "align", "compare", "--help"],
    "data_prep --help": ["-m", "data_prep", "--help"],
}
WITH_GOAL = ("kit compare --help", "data_prep --help")


def run(args: list[str], tree: Path, importtime: bool = False) -> tuple[float, str]:
    """Seconds of one fresh process (``cwd`` and ``PYTHONPATH``: ``tree``), and its stderr."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds, proc.stderr


def imports_of(stderr: str) -> list[tuple[int, int, str]]:
    """``-X importtime``'s lines as (nesting depth, cumulative microseconds, module name), in its order."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2  # nested imports are indented under their importer
        found.append((depth, int(cumulative), name.strip()))
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="fresh processes per command; the best counts")
    p.add_argument("--importtime", type=int, default=0, metavar="K", help="also show the K slowest top-level imports")
    p.add_argument("--tree", type=Path, default=REPO, help="the checkout to measure (default: this one)")
    args = p.parse_args(argv)
    tree = args.tree.resolve()

    print(f"{sys.executable} (Python {sys.version.split()[0]}), tree {tree}, best of {args.repeat}\n")
    print(f"{'command':<26} {'seconds':>8} {'x base':>8}  torch  goal")
    baseline = None
    for label, command in COMMANDS.items():
        best = min(run(command, tree)[0] for _ in range(args.repeat))
        baseline = baseline or best
        imports = imports_of(run(command, tree, importtime=True)[1])
        torch = "yes" if any(name == "torch" for _, _, name in imports) else "no"
        goal = (f"< {GOAL_S} s " + ("met" if best < GOAL_S else "MISSED")) if label in WITH_GOAL else ""
        print(f"{label:<26} {best:8.3f} {best / baseline:8.1f}  {torch:<5}  {goal}".rstrip())
        slowest = sorted(((micros, name) for depth, micros, name in imports if depth == 0), reverse=True)
        for micros, name in slowest[: args.importtime]:
            print(f"{'':<28}{micros / 1e6:6.3f} s  import {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
