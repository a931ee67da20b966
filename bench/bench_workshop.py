"""Do the workshop recipes meet their goal? Train each from scratch on the digits and time it.

    python bench/bench_workshop.py                        # both recipes, torch's default threads
    python bench/bench_workshop.py --threads 2 --data data/digits

Goal (the workshop's promise): on 2 CPU cores each workshop model trains in about a minute and
reaches >= 95 % top-1 on the digits validation split. Prints, per recipe: the model and its size,
the validation top-1 after the last epoch (and the best epoch), the wall-clock seconds of the
training loop (validation included, start-up excluded) and the training images/s.

Timings depend on the machine and on what else runs on it: rerun on a quiet machine before quoting
them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_prep.digits import write_digits  # noqa: E402
from kit.config import recipes  # noqa: E402
from kit.train import train  # noqa: E402

RECIPES = ("workshop_hivit", "workshop_cait")
GOAL_ACC1, GOAL_SECONDS = 95.0, 60.0


class EpochPrinter:
    """Prints each validation to the stream that was stdout when it was made (the run's own output is muted)."""

    def __init__(self, name: str):
        self.name, self.t0, self.out = name, time.perf_counter(), sys.stdout

    def on_eval(self, record: dict) -> None:
        print(
            f"  {self.name} epoch {record['epoch']}: val top-1 {record['acc1']:.2f} %  "
            f"({time.perf_counter() - self.t0:.0f} s)",
            file=self.out,
            flush=True,
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="*", default=list(RECIPES))
    p.add_argument("--data", help="digits folder (default: written to a temporary folder)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override for every recipe")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kit-workshop-") as tmp:
        data = Path(args.data) if args.data else write_digits(Path(tmp) / "digits")
        print(f"digits in {data}; {torch.get_num_threads()} torch threads; device {args.device}")
        for name in args.recipes:
            cfg = recipes.resolve(
                name,
                {
                    "data": str(data),
                    "out": str(Path(tmp) / name),
                    "device": args.device,
                    "progress": False,
                    "overwrite": True,
                },
                args.set,
            )
            printer = EpochPrinter(name)
            with contextlib.redirect_stdout(io.StringIO()):
                result = train(cfg, callbacks=[printer])
            params = json.loads((Path(tmp) / name / "config.json").read_text())["derived"]["parameters"]
            row = {
                "recipe": name,
                "model": cfg["model"]["name"],
                "parameters": params,
                "epochs": cfg["epochs"],
                "batch_size": cfg["batch_size"],
                "val_acc1": result.val_acc1,
                "best_acc1": result.best_acc1,
                "seconds": result.train_seconds,
                "images_per_s": result.images_per_s,
            }
            rows.append(row)
            ok = "meets" if row["val_acc1"] >= GOAL_ACC1 and row["seconds"] <= 1.25 * GOAL_SECONDS else "misses"
            print(
                f"{name:<15} {row['model']:<18} {params / 1e6:5.2f} M params  {row['epochs']:>3} epochs  "
                f"val top-1 {row['val_acc1']:6.2f} % (best {row['best_acc1']:.2f} %)  {row['seconds']:6.1f} s  "
                f"{row['images_per_s']:6.1f} img/s  -> {ok} the goal (>= {GOAL_ACC1:.0f} %, ~{GOAL_SECONDS:.0f} s)",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
