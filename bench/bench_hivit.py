"""Speed of the kit's HiViT on the CPU: training step vs mmpretrain's, and the masked forward.

    PYTHONPATH=$PWD python bench/bench_hivit.py                      # masked-vs-full only
    PYTHONPATH=$PWD:/path/to/mm-site python bench/bench_hivit.py     # + the mmpretrain comparison

1. Training step (forward + cross-entropy + backward + AdamW step) of HiViT-tiny, batch 8, 224x224,
   fp32, against mmpretrain 1.2.0's HiViT-tiny classifier built from its packaged config, with the
   same weights (ours are loaded from mmpretrain's state_dict), the same drop-path rate (0.05),
   train mode in both. Speed ratio = mmpretrain's median step time / ours. "kit (default)" is what
   ``timm.create_model`` gives (explicit attention on the CPU when a bias is present); "SDPA forced"
   shows why: on the CPU, SDPA with a bias that needs grad falls back to a slower math kernel.
   "kit + fused AdamW" is the step as ``kit train`` runs it: the same model with torch's fused AdamW
   kernel (same update rule), against mmpretrain with the per-tensor AdamW its OptimWrapper builds.
2. Forward (eval, no grad) of the kit's HiViT-tiny with 75 % of the main tokens masked
   (``ids_keep`` of 49 of 196 tokens) against no masking. Ratio = full / masked.
3. Training images/s of the workshop model at batch 64 (32x32, 10 classes): the registered default
   (patch 8: 4x4 main tokens of 4x4 inner patches) against ``patch_size=4`` (8x8 main tokens whose
   inner patches are single pixels).

The machine may be shared and noisy: the contenders alternate within every repeat and the figures
are medians. mmpretrain is imported only if importable; the script says so otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import timm
import torch
import torch.nn.functional as F

import kit.models  # noqa: F401  (registers the kit's models in timm)
from kit.device import shim as kit_device  # noqa: E402
from kit.models.hivit import Attention, random_masking_ids  # noqa: E402


def load_mmpretrain_tiny():
    """mmpretrain's HiViT-tiny ImageClassifier from its packaged config, or None if not importable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mmpretrain
            import mmpretrain.models  # noqa: F401
            from mmengine.config import Config
            from mmpretrain.registry import MODELS
    except ImportError as e:
        print(f"mmpretrain not importable ({e}): skipping the comparison with mmpretrain")
        return None
    from pathlib import Path

    cfg = Config.fromfile(str(Path(mmpretrain.__file__).parent / ".mim/configs/_base_/models/hivit/tiny_224.py"))
    model = MODELS.build(cfg.model)
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance().setLevel("WARNING")  # init_weights logs every parameter otherwise
    model.init_weights()
    print(f"mmpretrain {mmpretrain.__version__} imported from {Path(mmpretrain.__file__).parent}")
    return model


def make_step(model, forward, x, y, force_sdpa: bool = False, fused: bool = False):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, **({"fused": True} if fused else {}))

    def step():
        Attention.sdpa_on_cpu_with_bias = force_sdpa
        try:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(forward(x), y)
            loss.backward()
            opt.step()
        finally:
            Attention.sdpa_on_cpu_with_bias = False

    return step


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call. CPU time is the steadier figure on a shared
    machine with one thread (other processes do not inflate it); wall time is what a user waits."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def race(contenders: dict, repeats: int, warmup: int = 2) -> dict:
    """Median (wall, cpu) seconds per call of each contender, alternating them inside every repeat."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in contenders}
    for r in range(repeats):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            times[name].append(timed(contenders[name]))
    return {name: tuple(statistics.median(t[i] for t in ts) for i in (0, 1)) for name, ts in times.items()}


def report(title: str, t: dict, batch: int, baseline: str, label: str) -> None:
    print(f"\n{title}  (median wall | median process CPU)")
    for name, (wall, cpu) in t.items():
        print(
            f"  {name:<28} {wall * 1000:8.1f} ms {batch / wall:6.1f} img/s | {cpu * 1000:8.1f} ms   "
            f"{label} {t[baseline][0] / wall:5.2f}x wall, {t[baseline][1] / cpu:5.2f}x cpu"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0 = torch's default); 1 gives steadier figures on a busy machine",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} threads, "
        f"batch {args.batch}, 224x224, fp32, CPU, medians of {args.repeats} interleaved repeats"
    )

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 224, 224)
    y = torch.randint(0, 1000, (args.batch,))
    ours = timm.create_model("hivit_tiny_patch16_224").train()

    mm = load_mmpretrain_tiny()
    if mm is not None:
        mm.train()
        sd = {k.removeprefix("backbone."): v for k, v in mm.state_dict().items()}
        sd = {("head." + k[len("head.fc.") :] if k.startswith("head.fc.") else k): v for k, v in sd.items()}
        ours.load_state_dict(sd, strict=True)
        forced = timm.create_model("hivit_tiny_patch16_224").train()
        forced.load_state_dict(sd, strict=True)
        fused = timm.create_model("hivit_tiny_patch16_224").train()
        fused.load_state_dict(sd, strict=True)
        t = race(
            {
                "mmpretrain": make_step(mm, lambda inp: mm(inp, mode="tensor"), x, y),
                "kit (default)": make_step(ours, ours, x, y),
                "kit (SDPA forced on CPU)": make_step(forced, forced, x, y, force_sdpa=True),
                "kit + fused AdamW (trainer)": make_step(
                    fused, fused, x, y, fused=kit_device.resolve("cpu").fused_optimizer()
                ),
            },
            args.repeats,
        )
        report(
            "training step (forward + cross-entropy + backward + AdamW step):",
            t,
            args.batch,
            "mmpretrain",
            "speed vs mmpretrain",
        )

    ours.eval()
    ids = random_masking_ids(args.batch, ours.num_patches, 0.75, generator=torch.Generator().manual_seed(0))

    def forward(ids_keep):
        def run():
            with torch.no_grad():
                ours(x, ids_keep)

        return run

    t = race({"full (196 tokens)": forward(None), f"masked 75% ({ids.shape[1]} tokens)": forward(ids)}, args.repeats)
    report("kit HiViT-tiny forward, eval, no grad:", t, args.batch, "full (196 tokens)", "speed vs full")

    # 3. Workshop size: training images/s at batch 64 on 32x32 inputs, registered (patch 8) vs patch 4.
    xs, ys = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    steps = {}
    for label, kw in (("hivit_workshop_32 (patch 8)", {}), ("hivit_workshop_32 patch_size=4", {"patch_size": 4})):
        model = timm.create_model("hivit_workshop_32", **kw).train()
        steps[label] = make_step(model, model, xs, ys)
    t = race(steps, args.repeats * 2)
    report("workshop training step, batch 64, 32x32:", t, 64, "hivit_workshop_32 (patch 8)", "speed vs patch 8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
