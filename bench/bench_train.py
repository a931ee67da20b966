"""How much the kit's training loop costs, and how well it uses the machine, for every registered model.

    python bench/bench_train.py                 # this machine's device (auto), the default model set
    python bench/bench_train.py --all           # every registered model, 384/448 px ones included
    python bench/bench_train.py --models hivit_workshop_32 cait_workshop_32 --batch-size 64

Three figures per model, all measured in this one run:

* **overhead**: ``kit.train.loop.train`` (the real loop: its data pipeline with per-sample seeding,
  the scheduler, per-step seeding, logging to metrics.jsonl and train.log, the loss sync, the
  progress bar) against a bare loop doing the same forward / backward / AdamW step on batches from
  a plain torchvision ``ImageFolder`` + ``DataLoader(shuffle=True)`` with the same timm transform.
  Both are timed as wall-clock over the same number of steps after warm-up; each is run
  ``--rounds`` times, alternating, and the fastest round of each is compared. Goal: <= 3 %.
* **images/s** of the kit's loop.
* **MFU** (model-FLOPs utilisation): training FLOPs per second (3 x the forward FLOPs counted by
  ``torch.utils.flop_counter`` on the meta device: forward + backward) divided by the peak fp32
  matmul rate measured here on a large square matmul just before that model's runs (so both
  see the same machine load) -- not a datasheet number.

Same model, batch, optimizer (``kit.train.parts.build_optimizer``: timm's AdamW with the kit's weight-decay
groups, torch's fused kernel where the device has it), loss (cross-entropy),
fp32, no clipping, no EMA, no Mixup in both loops, so that only the loop machinery differs.
Images are synthetic JPEGs at each model's native resolution, 10 classes.

On a CPU the default set leaves out the 384/448-px CaiTs (one step of cait_m48_448 costs minutes);
``--all`` adds them. Timings on a machine shared with other jobs are noisy: rerun on a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import timm  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import kit.models  # noqa: E402,F401  (registers the kit's models in timm)
from kit.config import recipes  # noqa: E402
from kit.core import seeding  # noqa: E402
from kit.data.transforms import build_transform  # noqa: E402
from kit.device import shim as device  # noqa: E402
from kit.device import timing  # noqa: E402
from kit.models import list_kit_models  # noqa: E402
from kit.train import build_optimizer, train  # noqa: E402


def forward_flops(name: str, img_size: int) -> float:
    with torch.device("meta"):
        model = timm.create_model(name, num_classes=10, img_size=img_size)
        x = torch.randn(1, 3, img_size, img_size)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


def write_images(root: Path, size: int, count: int) -> Path:
    """``count`` noise JPEGs in 10 class folders (train/ only: the bench does not validate)."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / "train" / f"n{i % 10:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.JPEG", quality=90)
    return root


def recipe_for(name: str, img_size: int, root: Path, out: Path, batch: int, steps: int, device_spec: str) -> dict:
    cfg = recipes.get_recipe("workshop_hivit")
    cfg["name"] = f"bench_{name}"
    cfg["model"] = {"name": name, "num_classes": 10, "drop_path_rate": 0.0, "kwargs": {}}
    cfg["data"].update(path=str(root), img_size=img_size, num_workers=0, format="imagefolder",
                       cache_images=False)  # as the bare loop
    cfg["data"]["train"].update(scale=(0.9, 1.0), ratio=(1.0, 1.0))
    cfg.update(batch_size=batch, epochs=1, mixup=None, label_smoothing=0.0, grad_clip=None, amp="none", eval_every=0)
    cfg["schedule"].update(warmup_epochs=0)
    cfg["ema"]["enabled"] = False
    cfg["run"].update(out=str(out), progress=False, overwrite=True, max_steps=steps, device=device_spec)
    return cfg


def time_kit(cfg: dict, warmup: int) -> float:
    """Seconds for steps warmup.. of a real ``train()`` run (its own per-step wall-clock times)."""
    with contextlib.redirect_stdout(io.StringIO()):  # the run's preamble; the table is what matters here
        train(copy.deepcopy(cfg))
    steps = [json.loads(line) for line in open(Path(cfg["run"]["out"]) / "metrics.jsonl")]
    return sum(r["time"] for r in steps[warmup:])


def time_bare(cfg: dict, dev: device.Device, warmup: int) -> float:
    """The same steps in the plainest loop: torchvision ImageFolder with the same timm transform and a
    shuffling DataLoader (no per-sample seeding), the same model, optimizer groups and loss."""
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(Path(cfg["data"]["path"]) / "train"), transform=build_transform(cfg["data"], True))
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                                         num_workers=cfg["data"]["num_workers"])
    seeding.seed_all(cfg["seed"], dev)
    model = timm.create_model(cfg["model"]["name"], num_classes=10, drop_path_rate=0.0,
                              img_size=cfg["data"]["img_size"])
    model.to(dev.torch_device).train()
    optimizer = build_optimizer(model, cfg["optimizer"], 1e-4, dev)  # the same optimizer (fused where the kit fuses)
    criterion = torch.nn.CrossEntropyLoss()
    steps = cfg["run"]["max_steps"]
    t0 = None
    for i, (images, labels) in enumerate(loader):
        if i == steps:
            break
        if i == warmup:
            dev.synchronize()
            t0 = time.perf_counter()
        images, labels = images.to(dev.torch_device), labels.to(dev.torch_device)
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    dev.synchronize()
    return time.perf_counter() - t0


def default_batch(img_size: int, dev: device.Device) -> int:
    """Small enough for a CPU to finish the default set in minutes; x8 on accelerators."""
    batch = 64 if img_size <= 32 else 4 if img_size <= 224 else 2
    return batch if dev.type == "cpu" else batch * 8


def default_models(dev: device.Device, include_all: bool) -> list[str]:
    names = list_kit_models()
    if include_all or dev.type != "cpu":
        return names
    return [n for n in names if timm.get_pretrained_cfg(n).input_size[-1] <= 224]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--models", nargs="*", help="default: every registered model (<= 224 px on a CPU)")
    p.add_argument("--all", action="store_true", help="on a CPU too, every registered model")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: 64 at 32 px, 4 at 224 px, 2 above (x8 on accelerators)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps after warm-up (default: 5 above 32 px, 40 at 32 px)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3,
                   help="kit/bare rounds, the order swapped every round; the fastest of each counts")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--matmul-size", type=int, default=None, help="default 2048 on a CPU, 8192 on accelerators")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = device.resolve(args.device)
    size = args.matmul_size or (2048 if dev.type == "cpu" else 8192)
    peak = timing.measure_matmul_flops(dev, torch.float32, size)
    models = args.models or default_models(dev, args.all)
    print(f"device {dev} ({dev.name()}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"measured fp32 matmul peak ({size}x{size}): {peak / 1e9:.1f} GFLOP/s at the start "
          "(re-measured before each model)")
    print(f"{'model':<24} {'px':>4} {'batch':>5} {'bare img/s':>11} {'kit img/s':>10} {'overhead':>9} "
          f"{'GFLOP/img':>10} {'peak GF/s':>10} {'MFU':>7}")
    rows, t_all = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        folders: dict[int, Path] = {}
        for name in models:
            img = int(timm.get_pretrained_cfg(name).input_size[-1])
            batch = args.batch_size or default_batch(img, dev)
            timed_steps = args.steps or (40 if img <= 32 else 5)  # a 32-px step is ~50 ms: time enough of them
            steps = args.warmup + timed_steps
            if img not in folders:
                folders[img] = write_images(Path(tmp) / f"px{img}", img, max(10, batch * steps))
            elif len(list((folders[img] / "train").rglob("*.JPEG"))) < batch * steps:
                write_images(folders[img], img, batch * steps)
            cfg = recipe_for(name, img, folders[img], Path(tmp) / "run", batch, steps, args.device)
            peak = max(timing.measure_matmul_flops(dev, torch.float32, size), 0.0)  # now, under this model's load
            kit_t, bare_t = [], []
            for r in range(args.rounds):  # whichever runs first in a round may pay for warm caches: swap
                for which in (("kit", "bare") if r % 2 == 0 else ("bare", "kit")):
                    if which == "kit":
                        kit_t.append(time_kit(cfg, args.warmup))
                    else:
                        bare_t.append(time_bare(cfg, dev, args.warmup))
            kit_s, bare_s = min(kit_t), min(bare_t)
            images = batch * timed_steps
            flops = 3 * forward_flops(name, img)
            row = {
                "model": name,
                "img_size": img,
                "batch": batch,
                "bare_images_per_s": images / bare_s,
                "kit_images_per_s": images / kit_s,
                "overhead": kit_s / bare_s - 1,
                "train_gflop_per_image": flops / 1e9,
                "mfu": flops * images / kit_s / peak,
                "matmul_peak_flops": peak,
                "kit_rounds_s": kit_t,
                "bare_rounds_s": bare_t,
            }
            rows.append(row)
            print(
                f"{name:<24} {img:>4} {batch:>5} {row['bare_images_per_s']:>11.2f} {row['kit_images_per_s']:>10.2f} "
                f"{100 * row['overhead']:>8.1f}% {row['train_gflop_per_image']:>10.3f} {peak / 1e9:>10.1f} "
                f"{100 * row['mfu']:>6.1f}%",
                flush=True,
            )
    overheads = [r["overhead"] for r in rows]
    print(f"median overhead {100 * statistics.median(overheads):.1f} % (goal <= 3 %); "
          f"total {time.perf_counter() - t_all:.0f} s")
    if args.json:
        results = {"device": dev.describe(), "matmul_peak_flops": peak, "rows": rows}
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
