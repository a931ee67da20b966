"""What several test modules share: a tiny recipe, reading a run's losses back, the environment of a subprocess.

Kept out of any one test module so that importing them does not import (and, with pytest, collect) that module's
tests too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from kit.config import recipes
from kit.train.runlog import read_metrics

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """One thread per process: results do not depend on the thread count, and 2 shared cores stay usable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_recipe(root: Path, out: Path, **changes) -> dict:
    """workshop_hivit's recipe with a 1-block ViT on 16x16 images and everything random switched on."""
    cfg = recipes.get_recipe("workshop_hivit")
    cfg["name"] = "tiny"
    cfg["model"] = {
        "name": "vit_tiny_patch16_224",
        "num_classes": None,
        "drop_path_rate": 0.1,
        "kwargs": {"patch_size": 4, "depth": 1, "embed_dim": 32, "num_heads": 2},
    }
    cfg["data"].update(path=str(root), img_size=16, num_workers=0)
    cfg["data"]["train"].update(scale=(0.5, 1.0), hflip=0.5, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25)
    cfg.update(batch_size=8, eval_batch_size=32, epochs=2, eval_every=1)
    cfg["mixup"] = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "prob": 1.0, "switch_prob": 0.5, "mode": "batch"}
    cfg["run"].update(out=str(out), progress=False)
    for dotted, value in changes.items():
        recipes.set_key(cfg, dotted.replace("__", "."), value)
    return cfg


def step_losses(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(run / "metrics.jsonl") if "split" not in r]


def log_iterations(run: Path) -> list[int]:
    text = (run / "train.log").read_text()
    return [int(m) for m in re.findall(r"^TCAPPDLL .* Iteration: (\d+)  rank : 0  train\.loss", text, re.M)]


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def assert_ranks_log_one_mean(stdout: str, steps: int) -> None:
    """Two torchrun ranks of a port script: each logs every step, both the same all-reduced mean of their two own
    (different) losses -- what DDP's all-reduce means for the log (kit.workshop.port.rank_losses reads them)."""
    from kit.workshop import port

    ranks = port.rank_losses(stdout)
    assert sorted(ranks) == [0, 1] and len(ranks[0]) == len(ranks[1]) == steps
    for (mean0, own0), (mean1, own1) in zip(ranks[0], ranks[1]):
        assert mean0 == mean1 and own0 != own1 and abs((own0 + own1) / 2 - mean0) < 2e-6


def grad_scaler_toy(half: tuple, steps: int, device: str = "cpu") -> list[tuple[bool, float]]:
    """Notebook 3's grad-scaler toy on ``device`` with ``half = (autocast, GradScaler class)``
    (:func:`kit.workshop.port.half_precision`): step 1's input overflows float16. Returns, per step, (weights
    unchanged?, the scale after the step)."""
    autocast, scaler_class = half
    model, scaler = torch.nn.Linear(8, 1).to(device), scaler_class(init_scale=2.0**10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen = []
    for step in range(steps):
        with autocast():
            loss = model(torch.full((4, 8), 1e5 if step == 1 else 1.0, device=device)).float().pow(2).mean()
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        before = model.weight.detach().clone()
        scaler.step(optimizer)
        scaler.update()
        seen.append((torch.equal(before, model.weight.detach()), scaler.get_scale()))
    return seen
