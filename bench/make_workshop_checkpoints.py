"""Make the trained workshop checkpoints that ship in the kit: ``kit train`` each workshop recipe, keep its weights.

    python -m data_prep digits --out data/digits
    python bench/make_workshop_checkpoints.py --data data/digits        # -> kit/assets/workshop_checkpoints/

This script is the one way these files are made; rerun it (and commit what it writes) whenever a workshop recipe
or model changes. For each workshop recipe it runs, in a process of its own,

    python -m kit train --recipe <recipe> --data <data> --out <temporary folder> --device cpu --no-progress

(plus ``--seed N`` when given), takes the run's ``best.pth`` (the weights of the epoch with the best validation
top-1; weights only, no optimizer state), loads it back strictly into the registered model and evaluates it on
the validation split, which must give the accuracy the run logged. Then it writes, all at once (the folder is
built under a temporary name and renamed into place, so a failed or interrupted run leaves the old files):

    <model>.pth       {"format", "recipe", "model_name", "model_kwargs", "num_classes", "img_size", "epoch",
                       "step", "acc1", "model": state dict} -- what ``kit.models.create(model, checkpoint=...)`` loads
    manifest.json     per model: file, bytes, sha256, recipe, seed, val top-1, epoch, step, the exact command,
                      torch / timm / kit / Python versions, threads, device, date
    README.md         the same, for people

Notebook 2 shows the attention maps, LayerScale and talking-heads matrices of these weights beside freshly
initialised ones; ``kit.workshop.workshop_checkpoint(model)`` finds a file,
``tests/test_workshop_checkpoints.py``
checks that each loads strictly and classifies the digits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from kit.config import recipes  # noqa: E402
from kit.core.atomic import atomic_dir  # noqa: E402
from kit.data import loaders as data  # noqa: E402
from kit.device.shim import resolve  # noqa: E402
from kit.models import create  # noqa: E402
from kit.train import evaluate  # noqa: E402

RECIPES = ("workshop_hivit", "workshop_cait")
OUT = REPO / "kit" / "assets" / "workshop_checkpoints"
#: What a shipped checkpoint keeps of best.pth (its "ema" entry is None in the workshop recipes: dropped).
#: Stands for the temporary run folder in the recorded commands.
RUN_DIR = "RUN_DIR_PLACEHOLDER"
KEEP = ("format", "recipe", "model_name", "model_kwargs", "num_classes", "img_size", "epoch", "step", "acc1", "model")


def train_command(recipe: str, args, run_dir: str) -> list[str]:
    cmd = ["python", "-m", "kit", "train", "--recipe", recipe, "--data", str(args.data), "--out", run_dir,
           "--device", args.device, "--no-progress"]
    return cmd + (["--seed", str(args.seed)] if args.seed is not None else [])


def train(recipe: str, args, run_dir: Path) -> None:
    """``kit train`` in a process of its own (its output kept in the run folder), as a user would run it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    cmd = [sys.executable, *train_command(recipe, args, str(run_dir))[1:]]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(run_dir.parent / f"{recipe}.out.txt", "w") as log:
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if code:
        tail = (run_dir.parent / f"{recipe}.out.txt").read_text()[-3000:]
        raise SystemExit(f"kit train --recipe {recipe} failed (exit {code}):\n{tail}")


def verified_accuracy(model_name: str, path: Path, cfg: dict) -> float:
    """Val top-1 (%) of the weights in ``path``, loaded strictly into a freshly built ``model_name``."""
    model = create(model_name, checkpoint=path)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"], strict=True)
    loaders = data.build_loaders(cfg["data"], batch_size=int(cfg["batch_size"]),
                                 eval_batch_size=cfg.get("eval_batch_size"), seed=int(cfg["seed"]))
    dev = resolve("cpu")
    metrics, _ = evaluate(model, loaders.val, dev, dev.amp_policy("none"), world=1)
    return metrics["acc1"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def readme(manifest: dict) -> str:
    lines = [
        "# Trained workshop checkpoints",
        "",
        "The weights of the two workshop models after a full run of their recipes on the embedded digits, shipped so",
        "that notebook 2 can show what training did to attention maps, LayerScale and the talking-heads matrices",
        "(beside freshly initialised models). Weights only (fp32 state dicts, no optimizer state); load one with",
        "",
        "    kit.models.create(model, checkpoint=kit.workshop.workshop_checkpoint(model))",
        "",
        "Written by `" + manifest["made_by"] + "`: generated, do not edit by hand; rerun it",
        "whenever a workshop recipe or model changes. It trains each recipe with the command below, takes the run's",
        "`best.pth`, checks that it loads strictly and gives the logged val top-1 again, and writes this folder",
        "atomically.",
        "",
        "| model | file | size | recipe | seed | val top-1 | epoch | torch | timm |",
        "|---|---|---:|---|---:|---:|---:|---|---|",
    ]
    for name, m in manifest["models"].items():
        lines.append(f"| `{name}` | `{m['file']}` | {m['bytes'] / 1e6:.2f} MB | `{m['recipe']}` | {m['seed']} | "
                     f"{m['val_acc1']:.2f} % | {m['epoch']} | {m['torch']} | {m['timm']} |")
    lines += ["", "Commands (the run folder was temporary):", ""]
    lines += [f"    {m['command']}" for m in manifest["models"].values()]
    lines += ["", f"Made {manifest['made']} on {manifest['machine']}, {manifest['threads']} torch threads, "
              f"Python {manifest['python']}, kit {manifest['kit']}; SHA-256 of each file in `manifest.json`.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the digits folder (python -m data_prep digits --out DIR)")
    p.add_argument("--device", default="cpu", help="where kit train runs (default cpu)")
    p.add_argument("--seed", type=int, default=None, help="recipe seed (default: the recipe's own)")
    p.add_argument("--out", type=Path, default=OUT, help=f"the folder to (re)write (default {OUT.relative_to(REPO)})")
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: no such folder; write it with python -m data_prep digits --out {args.data}")
    started = time.perf_counter()
    manifest: dict = {"made_by": "python bench/make_workshop_checkpoints.py --data " + shlex.quote(str(args.data))
                      + (f" --seed {args.seed}" if args.seed is not None else "")
                      + (f" --device {args.device}" if args.device != "cpu" else ""),
                      "models": {}}
    with tempfile.TemporaryDirectory() as tmp, atomic_dir(args.out) as staging:
        for recipe in RECIPES:
            run_dir = Path(tmp) / recipe
            print(f"training {recipe} ...", flush=True)
            train(recipe, args, run_dir)
            config = json.loads((run_dir / "config.json").read_text())
            best = torch.load(run_dir / "best.pth", map_location="cpu", weights_only=True)
            name = best["model_name"]
            target = staging / f"{name}.pth"
            torch.save({k: best[k] for k in KEEP}, target)
            cfg = recipes.resolve(recipe, {"data": str(args.data), "seed": args.seed})
            acc = verified_accuracy(name, target, cfg)
            if abs(acc - best["acc1"]) > 1e-6:
                raise SystemExit(f"{name}: reloaded weights give val top-1 {acc:.4f} %, "
                                 f"the run logged {best['acc1']:.4f} %")
            env = config["environment"]
            manifest["models"][name] = {
                "file": target.name,
                "bytes": target.stat().st_size,
                "sha256": sha256(target),
                "recipe": recipe,
                "seed": int(config["recipe"]["seed"]),
                "val_acc1": acc,
                "epoch": int(best["epoch"]),
                "step": int(best["step"]),
                "epochs": int(config["recipe"]["epochs"]),
                "command": shlex.join(train_command(recipe, args, RUN_DIR)).replace(RUN_DIR, f"<tmp>/{recipe}"),
                "torch": env["torch"],
                "timm": env["timm"],
                "kit": env["kit"],
                "python": env["python"],
                "threads": env["torch_threads"],
                "device": env["device"]["name"],
            }
            print(f"  {name}: val top-1 {acc:.2f} % (epoch {best['epoch']}), {target.stat().st_size / 1e6:.2f} MB",
                  flush=True)
        first = next(iter(manifest["models"].values()))
        manifest.update(made=datetime.now(timezone.utc).isoformat(timespec="seconds"), machine=first["device"],
                        threads=first["threads"], python=first["python"], kit=first["kit"])
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (staging / "README.md").write_text(readme(manifest))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
