"""How fast does ``cait_workshop_32`` train on this CPU, and does it reach >= 95 % on the digits set?

Two measurements, both fp32 at batch 64:

1. train throughput (forward + backward + AdamW step, img/s) of the workshop model and of a few
   neighbouring sizes, printed as a ratio against the registered ``cait_workshop_32`` measured in the
   same run (absolute figures on a shared machine are noisy; ratios much less so);
2. a short training run on the digits set (written with ``data_prep.digits.write_digits``, held in memory
   as tensors so that the loader costs nothing): val top-1 after every epoch and the wall time.

The training recipe is deliberately plain (AdamW lr 2e-3, wd 0.05, one warmup epoch then cosine, batch
64, no augmentation and no label smoothing by default: on a 12-epoch schedule both slowed convergence);
the kit's trainer may do better or worse.

Threads: on a machine shared with other jobs, 2 threads can be several times *slower* than 1 (OpenMP
workers wait on each other); compare ``--threads 1`` and ``--threads 2`` before trusting a figure.

    PYTHONPATH=. python bench/bench_cait_workshop.py --threads 2 --epochs 12
    PYTHONPATH=. python bench/bench_cait_workshop.py --variant depth=6 --variant embed_dim=96 --no-train
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F

import kit.models  # noqa: F401  (registers the kit's models in timm)

MODEL = "cait_workshop_32"


def parse_variant(text: str) -> dict:
    """``"depth=4,embed_dim=96"`` -> ``{"depth": 4, "embed_dim": 96}`` (ints, then floats, else str)."""
    out = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        for cast in (int, float, str):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
    return out


def train_throughput(model_kwargs: dict, batch: int, steps: int, warmup: int = 3) -> float:
    """Train images per second of ``MODEL`` built with ``model_kwargs`` (random data)."""
    torch.manual_seed(0)
    model = timm.create_model(MODEL, **model_kwargs).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - start)


def load_digits(root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits train/val splits as normalised float tensors (N, 3, 32, 32) and labels."""
    from torchvision import datasets, transforms

    from data_prep.digits import write_digits

    write_digits(root)
    cfg = timm.get_pretrained_cfg(MODEL)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(cfg.mean, cfg.std)])
    out = []
    for split in ("train", "val"):
        ds = datasets.ImageFolder(str(root / split), transform=tf)
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        out += [torch.stack(xs), torch.tensor(ys)]
    return tuple(out)


def random_shift(x: torch.Tensor, pixels: int = 2) -> torch.Tensor:
    """Shift every image by up to ``pixels`` in each direction (reflect-padded crop)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pixels,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * pixels + 1, (2,)).tolist()
    return padded[:, :, dy : dy + h, dx : dx + w]


@torch.no_grad()
def accuracy(model, x, y, batch=256) -> float:
    model.eval()
    correct = sum((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item() for i in range(0, len(x), batch))
    return correct / len(x)


def train_digits(model_kwargs: dict, epochs: int, batch: int, lr: float, seed: int, root: Path,
                 label_smoothing: float = 0.0, shift: int = 0) -> None:
    xtr, ytr, xva, yva = load_digits(root)
    torch.manual_seed(seed)
    model = timm.create_model(MODEL, **model_kwargs)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps_per_epoch = math.ceil(len(xtr) / batch)
    total, warm = epochs * steps_per_epoch, steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
    )
    train_s = 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), batch):
            idx = perm[i : i + batch]
            x = random_shift(xtr[idx], shift) if shift else xtr[idx]
            loss = F.cross_entropy(model(x), ytr[idx], label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        train_s += time.perf_counter() - start
        print(f"epoch {epoch + 1:2d}  loss {loss.item():.3f}  val top-1 {accuracy(model, xva, yva):.3f}  "
              f"train time {train_s:5.1f} s ({len(xtr) * (epoch + 1) / train_s:.0f} img/s)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps per throughput measurement")
    p.add_argument("--variant", action="append", default=[], help="model kwargs to compare, e.g. depth=4,embed_dim=96")
    p.add_argument("--train-variant", default="", help="model kwargs for the digits run (default: as registered)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--shift", type=int, default=0, help="random shifts of up to this many pixels")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--data", type=Path, default=None, help="digits folder (default: a temp dir)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    base = train_throughput({}, args.batch, args.steps)
    n = sum(p.numel() for p in timm.create_model(MODEL).parameters())
    print(f"{MODEL} (as registered, {n / 1e6:.2f} M params): {base:.0f} train img/s at batch {args.batch}, "
          f"{args.threads} threads (ratio 1.00)")
    for text in args.variant:
        kw = parse_variant(text)
        ips = train_throughput(kw, args.batch, args.steps)
        n = sum(p.numel() for p in timm.create_model(MODEL, **kw).parameters())
        print(f"  {text:<40} {n / 1e6:5.2f} M params  {ips:6.0f} img/s  ratio {ips / base:.2f}")

    if not args.no_train:
        kw = parse_variant(args.train_variant)
        with tempfile.TemporaryDirectory() as tmp:
            train_digits(kw, args.epochs, args.batch, args.lr, args.seed, args.data or Path(tmp) / "digits",
                         args.label_smoothing, args.shift)


if __name__ == "__main__":
    main()
