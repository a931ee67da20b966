"""How often does the noise-aware verdict fail a healthy run, and how small a bug does it catch?

    python bench/bench_noise_verdict.py --data data/digits --work runs/bench/noise_verdict

All runs are the workshop HiViT recipe on one CPU thread, ``--steps`` steps, no validation (made with
``bench/make_reference_ensembles.py``'s code and kept in ``--work``, so a second call reuses them):

* **false alarms** -- ``--members`` healthy runs (seed 0, initial weights perturbed by 1e-4 with their own
  ``numerics.seed``). Each member in turn is the candidate, judged against ``--folds`` different sets of
  ``--refs`` other members (REFERENCE plus ``refs - 1`` reference runs, the size of the shipped ensembles):
  ``members x folds`` held-out cases;
* **power against a constant offset** -- each held-out member's curve multiplied by ``1 + d`` (and ``1 - d``),
  judged against the first of its folds: the smallest ``d`` caught in at least 9 cases of 10;
* **power against a learning-rate error** -- ``--lr-runs`` runs with the learning rate times ``1 + e`` (each
  with its own perturbation seed, so each is a healthy run but for the error), judged against the first
  ``--refs`` members (the shipped ensemble): the smallest ``e`` caught in at least 9 of 10.

For every family it prints how often each rule -- ModelZoo's signed rule, the strict rule and the noise-aware
verdict -- fails, so the three can be compared on the same cases.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from make_reference_ensembles import EPS, run_member  # noqa: E402

from kit.config import recipes  # noqa: E402
from kit.validate.compare import compare_curves  # noqa: E402
from kit.validate.logformats import Curve, head, read_curve  # noqa: E402

RECIPE = "workshop_hivit"


def curve_of(args, name: str, seed: int, sets=()) -> Curve:
    """The run ``name`` (trained now unless ``--work`` already holds it with enough steps)."""
    folder = args.work / name
    metrics = folder / "metrics.jsonl"
    if not metrics.exists() or len(read_curve(metrics)) < args.steps:
        t0 = time.perf_counter()
        run_member(RECIPE, seed, argparse.Namespace(**{**vars(args), "set": list(sets)}), folder)
        print(f"  trained {name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return head(read_curve(metrics), args.steps)


def verdicts(refs: list, candidate: Curve) -> tuple:
    """(ModelZoo, strict, noise-aware) failed?"""
    c = compare_curves(refs[0], candidate, reference_runs=refs[1:])
    return (not c.legacy.passed, not c.strict.passed, not c.noise.passed)


def rates(cases: list) -> str:
    fails = np.mean(np.array(cases, dtype=float), axis=0)
    return f"ModelZoo {fails[0]:6.1%}   strict {fails[1]:6.1%}   noise-aware {fails[2]:6.1%}   ({len(cases)} cases)"


def scaled(curve: Curve, factor: float) -> Curve:
    return Curve(steps=curve.steps, losses=curve.losses * factor, format="synthetic", path=f"{curve.path} x {factor}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the digits folder")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "bench" / "noise_verdict", help="run folders")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--members", type=int, default=12)
    p.add_argument("--refs", type=int, default=5, help="reference curves per judgement (default 5)")
    p.add_argument("--folds", type=int, default=5, help="reference sets per held-out member (default 5)")
    p.add_argument("--offsets", type=float, nargs="+", default=[0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05])
    p.add_argument("--lr-errors", type=float, nargs="+", default=[0.05, 0.1, 0.2, -0.1, -0.2])
    p.add_argument("--lr-runs", type=int, default=10)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    args.eps, args.threads = EPS, 1
    torch.set_num_threads(1)
    print(f"workshop HiViT, {args.steps} steps, 1 thread; {args.refs} reference curves per judgement", flush=True)

    members = [curve_of(args, f"member_{s}", s) for s in range(1, args.members + 1)]
    rng = np.random.default_rng(0)
    folds = {}
    for i in range(args.members):
        others = [j for j in range(args.members) if j != i]
        combos = list(itertools.combinations(others, args.refs))
        folds[i] = [[members[j] for j in combos[k]] for k in rng.choice(len(combos), args.folds, replace=False)]
    healthy = [verdicts(refs, members[i]) for i in folds for refs in folds[i]]
    print(f"false alarms, healthy members:            {rates(healthy)}")
    out = {"steps": args.steps, "refs": args.refs, "false_alarms": np.mean(healthy, axis=0).tolist(),
           "n_false_alarm_cases": len(healthy), "offsets": {}, "lr_errors": {}}

    for d in args.offsets:
        for sign in (1, -1):
            cases = [verdicts(folds[i][0], scaled(members[i], 1 + sign * d)) for i in folds]
            print(f"constant offset {sign * d:+.1%}:                  {rates(cases)}")
            out["offsets"][f"{sign * d:+g}"] = np.mean(cases, axis=0).tolist()

    shipped, lr = members[: args.refs], float(recipes.get_recipe(RECIPE)["optimizer"]["lr"])
    for e in args.lr_errors:
        sets = [f"optimizer.lr={lr * (1 + e)!r}"]
        runs = [curve_of(args, f"lr{e:+g}_{k}", 100 + k, sets) for k in range(args.lr_runs)]
        cases = [verdicts(shipped, run) for run in runs]
        print(f"learning rate x {1 + e:g}:                  {rates(cases)}", flush=True)
        out["lr_errors"][f"{e:+g}"] = np.mean(cases, axis=0).tolist()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
