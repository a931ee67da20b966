"""What does ``kit align dump`` cost on top of the training step it records?

Builds ``--model`` once and times, in the same process, on the same fixed batch (the first
``--batch-size`` val images of ``--data``; with no ``--data``, a tiny image set written to a
temporary folder):

* baseline: one plain training step (forward, cross-entropy, backward), no hooks; best of ``--repeat``;
* the recorded step: the same step with every forward and gradient hook, statistics only;
* the whole ``kit align dump`` with ``--full-tensors-max 0`` (model build, weights digest, batch,
  recorded step, writing the folder), as a user runs it.

Prints the seconds and the ratios to the baseline.

    python bench/bench_align.py [--model hivit_base_patch16_224] [--batch-size 8] [--data DIR] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from kit.align.batch import data_config, fixed_batch  # noqa: E402
from kit.align.dump import dump, training_step  # noqa: E402
from kit.align.record import Recorder, disable_dropout  # noqa: E402
from kit.device import shim as device  # noqa: E402
from kit.models import create  # noqa: E402


def tiny_dataset(root: Path, n: int) -> Path:
    from PIL import Image

    (root / "val" / "c0").mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        pixels = torch.randint(0, 256, (64, 64, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(root / "val" / "c0" / f"{i:03d}.png")
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hivit_base_patch16_224")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--data", type=Path, help="a dataset folder with a val split (default: random images)")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or tiny_dataset(Path(tmp) / "data", args.batch_size)
        dev = device.resolve("cpu")
        policy = dev.amp_policy("none")
        torch.manual_seed(0)
        model = create(args.model, num_classes=10)
        disable_dropout(model)
        model.train()
        batch = fixed_batch(data, args.batch_size, data_config(args.model, model.pretrained_cfg))
        labels = batch.labels % 10
        plain = float("inf")
        for _ in range(args.repeat):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            F.cross_entropy(model(batch.images), labels).backward()
            plain = min(plain, time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        recorder = Recorder(torch.device("cpu"), 0)
        training_step(model, batch.images, labels, dev, policy, recorder, 1.0)
        entries, _ = recorder.finish()
        recorded = time.perf_counter() - start
        start = time.perf_counter()
        dump(args.model, data, Path(tmp) / "dump", device="cpu", batch_size=args.batch_size, full_tensors_max=0)
        whole = time.perf_counter() - start

    print(f"{args.model}, batch {args.batch_size}, CPU, {torch.get_num_threads()} threads, {len(entries)} entries")
    print(f"plain training step (best of {args.repeat}): {plain:7.2f} s   1.00x")
    print(f"recorded step, statistics only:       {recorded:7.2f} s   {recorded / plain:.2f}x")
    print(f"kit align dump --full-tensors-max 0:  {whole:7.2f} s   {whole / plain:.2f}x")


if __name__ == "__main__":
    main()
