"""Does the workshop's accuracy promise hold on every seed? Train both recipes over seeds and thread counts.

    python bench/bench_workshop_seeds.py                          # seeds 0-9, 1 and 2 threads, both recipes
    python bench/bench_workshop_seeds.py --threads 1 --jobs 2     # two 1-thread runs side by side (accuracy only)
    python bench/bench_workshop_seeds.py --set ema.enabled=true   # try a recipe change on every run

Each run is ``kit train --recipe R --seed S`` from scratch on the embedded digits, in a process of its own
with torch limited to T threads. Prints one line per run and then, per recipe and thread count, the
minimum / median / maximum validation top-1 after the last epoch and the training seconds. The promise
(docs/results.md, notebook 4): every seed >= 96.5 % (the notebook asserts 95 %, the margin), each model <= 60 s
median on 2 cores.

Accuracy does not depend on what else the machine does (a run with T threads is deterministic); time
does: quote the seconds only from ``--jobs 1`` on a quiet machine. ``--jobs 2`` with ``--threads 1``
finds the accuracies in half the time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RECIPES = ("workshop_hivit", "workshop_cait")
PROMISE_ACC1, PROMISE_SECONDS = 96.5, 60.0


def one_run(recipe: str, seed: int, threads: int, data: str, out: str, sets: list[str]) -> dict:
    """Train one run in this process (``--one``) and return what the table needs."""
    import contextlib
    import io

    import torch

    torch.set_num_threads(threads)
    from kit.config import recipes
    from kit.train import train

    overrides = {"data": data, "out": out, "device": "cpu", "progress": False, "overwrite": True, "seed": seed}
    cfg = recipes.resolve(recipe, overrides, sets)
    with contextlib.redirect_stdout(io.StringIO()):
        result = train(cfg)
    evals = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    ema = [e for e in evals if e.get("split") == "val_ema"]
    return {
        "recipe": recipe,
        "seed": seed,
        "threads": threads,
        "val_acc1": result.val_acc1,
        "best_acc1": result.best_acc1,
        "seconds": result.train_seconds,
        "ema_acc1": ema[-1]["acc1"] if ema else None,  # the EMA's, when the recipe validates it too
    }


def spawn(recipe: str, seed: int, threads: int, data: str, tmp: str, sets: list[str]) -> dict:
    """One run in a fresh process (its own thread pool, nothing shared with the other runs)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = str(Path(tmp) / f"{recipe}_t{threads}_s{seed}")
    cmd = [sys.executable, __file__, "--one", recipe, str(seed), str(threads), "--data", data, "--out", out]
    for s in sets:
        cmd += ["--set", s]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{recipe} seed {seed} ({threads} threads) failed:\n{done.stderr[-2000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {recipe:<15} {threads} thread(s) seed {seed}: val top-1 {row['val_acc1']:6.2f} %  "
        f"(best {row['best_acc1']:.2f} %)  {row['seconds']:5.1f} s"
        + (f"  EMA {row['ema_acc1']:.2f} %" if row.get("ema_acc1") is not None else ""),
        flush=True,
    )
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| recipe | threads | seeds | top-1 min | median | max | seconds min | median | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted({(r["recipe"], r["threads"]) for r in rows}):
        group = [r for r in rows if (r["recipe"], r["threads"]) == key]
        acc = [r["val_acc1"] for r in group]
        sec = [r["seconds"] for r in group]
        lines.append(
            f"| {key[0]} | {key[1]} | {len(group)} | {min(acc):.2f} % | {statistics.median(acc):.2f} % | "
            f"{max(acc):.2f} % | {min(sec):.0f} | {statistics.median(sec):.0f} | {max(sec):.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="*", default=list(RECIPES))
    p.add_argument("--seeds", type=int, nargs="*", default=list(range(10)))
    p.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    p.add_argument("--jobs", type=int, default=1, help="runs at once (timings are only honest with 1)")
    p.add_argument("--data", help="digits folder (default: written to a temporary folder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override for every run")
    p.add_argument("--json", metavar="FILE", help="also write the rows here")
    p.add_argument("--one", nargs=3, metavar=("RECIPE", "SEED", "THREADS"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        recipe, seed, threads = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(one_run(recipe, seed, threads, args.data, args.out, args.set)))
        return 0

    from data_prep.digits import write_digits

    with tempfile.TemporaryDirectory(prefix="kit-seeds-") as tmp:
        data = args.data or str(write_digits(Path(tmp) / "digits"))
        jobs = [(r, s, t) for t in args.threads for r in args.recipes for s in args.seeds]
        print(f"{len(jobs)} runs, {args.jobs} at a time; overrides: {args.set or 'none'}", flush=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(lambda j: spawn(*j, data, tmp, args.set), jobs))
    print()
    print(table(rows))
    worst = min(r["val_acc1"] for r in rows)
    verdict = "keeps" if worst >= PROMISE_ACC1 else "breaks"
    print(f"\nlowest top-1 {worst:.2f} % -> {verdict} the promise (>= {PROMISE_ACC1} %)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
