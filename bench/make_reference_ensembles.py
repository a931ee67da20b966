"""Write the shipped reference ensembles: several numerically perturbed runs of each workshop recipe.

    python -m data_prep digits --out data/digits
    python bench/make_reference_ensembles.py --data data/digits          # -> kit/assets/reference_ensembles/

Each member is the recipe unchanged (seed 0, same data order) except for its initial weights, multiplied by
``1 + eps * N(0, 1)`` with the member's own ``numerics.seed`` (:mod:`kit.train.perturb` says why): the runs differ
from one another only as a change of arithmetic would make them differ, which is the spread
``kit compare --reference-runs`` judges a port against. Runs use one CPU thread (as the shipped reference
curves do) and keep only what ``kit compare`` reads from ``metrics.jsonl``: step, epoch, loss and lr of each
optimizer step. Regenerate (and commit) them whenever a workshop recipe or model changes.

``--other-seeds N`` also writes N unperturbed runs with recipe seeds 1..N (``seed_<k>.metrics.jsonl``):
another initialisation and another data order, which notebook 6 uses to show why such runs make a band
too loose to judge a port by.

``--set`` adds recipe overrides to every run and ``--keep-runs`` keeps the whole run folders: that is how
``bench/bench_noise_verdict.py`` makes its larger ensembles and its runs with a planted learning-rate error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kit.config import recipes  # noqa: E402
from kit.train import train  # noqa: E402

RECIPES = ("workshop_hivit", "workshop_cait")
#: Above float32's rounding, below a bfloat16 one: the members part from one another a little sooner than runs
#: with another thread count do, so the band is never narrower than real numerical differences make it.
EPS = 1e-4
KEEP = ("step", "epoch", "loss", "lr")


def member_path(out: Path, recipe: str, seed: int) -> Path:
    return out / recipe / f"member_{seed}.metrics.jsonl"


def run_member(recipe: str, seed: int, args, folder: Path, recipe_seed: int | None = None) -> Path:
    """Train one member into ``folder`` (output muted) and return its metrics.jsonl: perturbed with
    ``numerics.seed`` = ``seed``, or, given ``recipe_seed``, unperturbed with that recipe seed."""
    sets = [f"numerics.init_perturbation={args.eps!r}", f"numerics.seed={seed}"] if recipe_seed is None else []
    sets += args.set
    overrides = {"data": args.data, "out": str(folder), "device": "cpu", "max_steps": args.steps,
                 "progress": False, "overwrite": True, "seed": recipe_seed}
    cfg = recipes.resolve(recipe, overrides, sets)
    cfg["eval_every"] = 0  # a short alignment run: no validation
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(cfg)
    return folder / "metrics.jsonl"


def step_records(metrics: Path) -> str:
    """The optimizer-step records of a metrics.jsonl, cut to the keys kit compare reads."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return "".join(json.dumps({k: r[k] for k in KEEP}) + "\n" for r in rows if r.get("split", "train") == "train")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the digits folder (python -m data_prep digits --out DIR)")
    p.add_argument("--recipes", nargs="+", default=list(RECIPES))
    p.add_argument("--members", type=int, default=5, help="runs per recipe (default 5)")
    p.add_argument("--first-seed", type=int, default=1, help="numerics.seed of the first member (default 1)")
    p.add_argument("--steps", type=int, default=150, help="optimizer steps per run (default 150)")
    p.add_argument("--eps", type=float, default=EPS, help=f"numerics.init_perturbation (default {EPS:g})")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--other-seeds", type=int, default=0, metavar="N", help="also N runs with recipe seeds 1..N")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override for every run")
    p.add_argument("--out", type=Path, default=REPO / "kit" / "assets" / "reference_ensembles")
    p.add_argument("--keep-runs", type=Path, metavar="DIR", help="keep the run folders here (default: thrown away)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.keep_runs or Path(tmp)
        for recipe in args.recipes:
            for seed in range(args.first_seed, args.first_seed + args.members):
                metrics = run_member(recipe, seed, args, runs / recipe / f"member_{seed}")
                target = member_path(args.out, recipe, seed)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(step_records(metrics))
                print(f"{target}  ({args.steps} steps, numerics.seed {seed})", flush=True)
            for seed in range(1, args.other_seeds + 1):
                metrics = run_member(recipe, 0, args, runs / recipe / f"seed_{seed}", recipe_seed=seed)
                target = args.out / recipe / f"seed_{seed}.metrics.jsonl"
                target.write_text(step_records(metrics))
                print(f"{target}  ({args.steps} steps, recipe seed {seed})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
