"""What the emulated SDAA card costs: one training step on ``sdaa`` against the same step on the CPU.

    python bench/bench_emulator.py                  # both workshop models, batch 64, 30 steps, best of 3 rounds
    python bench/bench_emulator.py --steps 50 --rounds 5

The card runs the CPU's own kernels on the same memory, so the difference is the emulator's overhead alone:
the dispatcher's extra hop to the PrivateUse1 fallback, the CPU aliases it builds for each operator's
tensors, and the copy of each result into the card's allocator. Both devices run the same model, batch,
AdamW (the fused kernel where the CPU has it), fp32 forward/backward/step, in one process; the rounds
alternate and the fastest round of each is kept. The ratio is card time / CPU time (1.00 = no overhead).
It measures the emulator on this CPU, never the card: a real SDAA card's speed is not knowable here.
Needs the emulator (``make setup-emulator``).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kit.core import seeding  # noqa: E402
from kit.device import shim as device  # noqa: E402
from kit.models import create  # noqa: E402
from kit.train import build_optimizer  # noqa: E402


def run_steps(model, optimizer, images, labels, dev, steps: int) -> float:
    """Seconds for ``steps`` training steps on ``dev`` (synchronised at both ends)."""
    dev.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    dev.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["hivit_workshop_32", "cait_workshop_32"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    try:
        card = device.resolve("sdaa")
    except Exception as e:  # noqa: BLE001 - say why and stop
        print(f"bench_emulator: the emulated card is not here ({e}); run `make setup-emulator` first")
        return 2
    if not card.emulated:
        print("bench_emulator: this machine has a real SDAA card; this benchmark is for the emulator only")
        return 2
    cpu = device.resolve("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {card.name()}")
    print(f"{'model':<20} {'cpu s/step':>11} {'sdaa s/step':>12} {'sdaa / cpu':>11}")
    for name in args.models:
        seeding.seed_all(0)
        base = create(name, num_classes=10)
        images = torch.randn(args.batch_size, 3, 32, 32)
        labels = torch.randint(0, 10, (args.batch_size,))
        setups = {}
        for dev in (cpu, card):
            model = copy.deepcopy(base).to(dev.torch_device).train()
            opt_cfg = {"opt": "adamw", "weight_decay": 0.05, "fused": "auto"}
            setups[dev.type] = (model, build_optimizer(model, opt_cfg, 1e-3, dev), images.to(dev.torch_device),
                                labels.to(dev.torch_device), dev)
            run_steps(*setups[dev.type], steps=3)  # warm-up
        best = {"cpu": float("inf"), "sdaa": float("inf")}
        for _ in range(args.rounds):
            for kind in ("cpu", "sdaa"):
                best[kind] = min(best[kind], run_steps(*setups[kind], steps=args.steps))
        per_cpu, per_card = best["cpu"] / args.steps, best["sdaa"] / args.steps
        print(f"{name:<20} {per_cpu:>11.4f} {per_card:>12.4f} {per_card / per_cpu:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
