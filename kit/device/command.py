"""``kit devices``: what the device shim sees on this machine, which device ``auto`` picks and why, and what
``--amp`` would do there.

A command of its own, apart from :mod:`kit.device.shim`, so that the shim the trainer imports holds no printing;
notebook 0 shows the same rows through :func:`report`. torch (and the shim) load only when the rows are made,
so ``kit devices --help`` answers at once.
"""

from __future__ import annotations

import argparse

from kit.device.choices import AMP_CHOICES

__all__ = ["report", "add_arguments", "run"]


def report(amp: str = "auto") -> list[tuple[str, str]]:
    """(label, value) rows describing what this machine has; used by ``kit devices`` and notebook 0."""
    import torch

    from kit.device.shim import mps_available, resolve, sdaa_emulated

    rows = [("torch", torch.__version__)]
    try:
        import torch_sdaa  # noqa: F401  (optional: only SDAA machines have it)

        rows.append(("torch_sdaa", getattr(torch_sdaa, "__version__", "importable")))
        if sdaa_emulated():
            count = torch.sdaa.device_count()
            rows.append(("SDAA cards", f"{count} EMULATED (vitkit's emulator: the CPU does the work; "
                                       "its numbers are CPU numbers, never the card's; auto never picks it)"))
    except Exception as e:  # noqa: BLE001 - any import failure means "not usable"
        rows.append(("torch_sdaa", f"not importable ({type(e).__name__})"))
    rows.append(("CUDA", f"{torch.cuda.device_count()} device(s)" if torch.cuda.is_available() else "not available"))
    rows.append(("MPS", "available" if mps_available() else "not available"))
    dev = resolve("auto")
    rows += [
        ("auto picks", dev.spec),
        ("why", dev.reason),
        ("hardware", dev.name()),
        ("distributed backend", dev.dist_backend),
        (f"--amp {amp}", dev.amp_policy(amp).describe()),
    ]
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amp", default="auto", choices=AMP_CHOICES, help="show what this --amp value would do")


def run(args: argparse.Namespace) -> int:
    rows = report(args.amp)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
