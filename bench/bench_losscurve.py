"""How fast does ``kit compare`` read a big log? (Goal: a 1,000,000-line TCAPPDLL log in < 5 s.)

Writes a TCAPPDLL log of ``--lines`` lines (default 1,000,000; 20 epochs with the iteration
counter restarting each epoch, plus a 5-line preamble) into a temporary folder, then times, in the
same run and on the same file:

* baseline: reading the file line by line and counting the lines (what any parser must at least do);
* ``read_curve``: detecting the format and parsing every loss, step and line number;
* ``compare_curves``: both figures on two such curves paired by step.

Each timing is the best of ``--repeat`` runs. Prints the seconds and the ratio to the baseline.

    python bench/bench_losscurve.py [--lines N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from kit.validate.compare import compare_curves  # noqa: E402
from kit.validate.logformats import read_curve  # noqa: E402


def write_log(path: Path, n_lines: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    per_epoch = max(1, n_lines // 20)
    with open(path, "w") as f:
        f.write("Not using distributed mode\nNamespace(model='cait_S24_224', lr=0.0005)\n")
        f.write("Creating model: cait_S24_224\nnumber of params: 46916200\nStart training for 20 epochs\n")
        for n in range(n_lines - 5):
            epoch, it = divmod(n, per_epoch)
            f.write(
                f"TCAPPDLL 2025-05-20 13:34:46.504606 - Epoch: {epoch} Iteration: {it}  rank : 0  "
                f"train.loss : {rng.uniform(6.5, 7.2)!r}  train.ips : {rng.uniform(3.1, 3.5)!r} imgs/s\n"
            )


def best_of(repeat: int, fn):
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def baseline(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sdaa.log"
        write_log(path, args.lines)
        size_mb = path.stat().st_size / 1e6
        t_base, n_lines = best_of(args.repeat, lambda: baseline(path))
        t_read, curve = best_of(args.repeat, lambda: read_curve(path))
        t_cmp, cmp = best_of(args.repeat, lambda: compare_curves(curve, curve))
    print(
        f"log: {n_lines:,} lines, {size_mb:.0f} MB, {len(curve):,} loss points, "
        f"steps {curve.steps[0]}..{curve.steps[-1]}"
    )
    print(f"CPU cores visible: {os.cpu_count()}; best of {args.repeat} runs each")
    print(f"baseline (read and count lines): {t_base:.3f} s")
    goal = (
        f"  (goal for 1,000,000 lines: < 5 s, {'met' if t_read < 5 else 'NOT met'})" if args.lines >= 1_000_000 else ""
    )
    print(f"read_curve (detect + parse):     {t_read:.3f} s  = {t_read / t_base:.1f} x baseline{goal}")
    print(
        f"compare_curves (two curves):     {t_cmp:.3f} s  = {t_cmp / t_base:.2f} x baseline  ({cmp.n_points:,} points)"
    )


if __name__ == "__main__":
    main()
