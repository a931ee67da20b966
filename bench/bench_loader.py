"""Normalising whole batches instead of each image: what it saves on the workshop recipes.

    python bench/bench_loader.py                     # both workshop recipes, 200 steps, 3 rounds
    python bench/bench_loader.py --steps 400 --rounds 5 --data data/digits

``kit.data.loaders`` stops timm's per-image transform at a uint8 tensor and does its last two steps (ToTensor's
/ 255 and Normalize) on the stacked batch, in the loader's collate (``kit/data/transforms.py`` says why). This
measures, for each workshop recipe, the per-image path (the baseline: ``split_normalize`` switched off)
against the per-batch one, in the same process and alternating rounds, the fastest round of each:

* **input pipeline**: seconds to draw ``--steps`` training batches (cached decoded images, as the recipe
  does) — the part that changed;
* **training**: seconds of ``kit.train.loop.train`` for ``--steps`` steps (no validation), i.e. what a
  learner waits for; it also checks that both paths give the same losses, bit for bit.

Figures are ratios (per-image time / per-batch time) measured in this one run. Timings on a machine
shared with other jobs are noisy: run it on a quiet one.
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
from kit.data import loaders as data  # noqa: E402
from kit.train import train  # noqa: E402

RECIPES = ("workshop_hivit", "workshop_cait")
REAL_SPLIT = data.split_normalize


def per_image(on: bool) -> None:
    """Switch the per-image baseline on (every image normalised by its own transform) or off (the kit's way)."""
    data.split_normalize = (lambda transform: (transform, None)) if on else REAL_SPLIT


def draw_batches(cfg: dict, steps: int) -> float:
    loaders = data.build_loaders(cfg["data"], batch_size=cfg["batch_size"], seed=cfg["seed"], with_val=False)
    list(loaders.train)  # epoch 0 first: every image decoded and cached, as in a run's first epoch
    t0, drawn, epoch = time.perf_counter(), 0, 1
    while drawn < steps:
        loaders.train_sampler.set_epoch(epoch)
        for _ in loaders.train:
            drawn += 1
            if drawn == steps:
                break
        epoch += 1
    return time.perf_counter() - t0


def training(name: str, root: Path, steps: int, out: Path) -> tuple[float, list[float]]:
    flags = {"data": str(root), "device": "cpu", "progress": False, "out": str(out), "max_steps": steps,
             "overwrite": True}
    cfg = recipes.resolve(name, flags, ["eval_every=0"])
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        train(cfg)
    seconds = time.perf_counter() - t0
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return seconds, losses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="the digits folder (default: written into a temporary folder)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else write_digits(Path(tmp) / "digits")
        print(f"{args.steps} steps, best of {args.rounds} alternating rounds, {torch.get_num_threads()} threads")
        for name in RECIPES:
            cfg = recipes.resolve(name, {"data": str(root)})
            best = {True: [float("inf")] * 2, False: [float("inf")] * 2}
            losses = {}
            for _ in range(args.rounds):
                for baseline in (True, False):
                    per_image(baseline)
                    pipeline = draw_batches(cfg, args.steps)
                    seconds, losses[baseline] = training(name, root, args.steps, Path(tmp) / f"{name}_{baseline}")
                    best[baseline] = [min(best[baseline][0], pipeline), min(best[baseline][1], seconds)]
            per_image(False)
            (pipe_img, train_img), (pipe_batch, train_batch) = best[True], best[False]
            print(f"{name}: input pipeline {pipe_img:.2f} s per image -> {pipe_batch:.2f} s per batch "
                  f"({pipe_img / pipe_batch:.2f}x); training {train_img:.2f} s -> {train_batch:.2f} s "
                  f"({train_img / train_batch:.2f}x); losses identical: {losses[True] == losses[False]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
