"""Run the kit's benchmarks one after the other and keep what each printed (``make bench``).

    python bench/run_all.py                         # every benchmark below, in this order
    python bench/run_all.py --only hivit losscurve  # a selection
    python bench/run_all.py --mmpretrain-site /path/to/mm-site   # + HiViT vs mmpretrain 1.2.0

Each benchmark runs in its own process (so one's threads and caches do not colour the next one's
figures) with the repository on ``PYTHONPATH``; its output is shown and also written to
``runs/bench/<name>.txt`` (temporary name, then renamed). Every script prints its figures as ratios
against a baseline it measures in the same run, so the files can be compared across machines.

Benchmarks share the machine's cores with anything else that runs: start them on a quiet machine.
The comparison with mmpretrain needs mmpretrain 1.2.0 importable from a side folder that is *not*
part of the kit's environment (see bench/bench_hivit.py); without it that part is skipped and says so.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: name -> (script, arguments, what it answers)
BENCHMARKS: dict[str, tuple[str, list[str], str]] = {
    "hivit": ("bench_hivit.py", [], "HiViT-tiny training step vs mmpretrain; masked-unit forward speed-up"),
    "workshop": ("bench_workshop.py", [], "both workshop recipes: val top-1 and training seconds on this machine"),
    "loader": ("bench_loader.py", [], "workshop recipes: normalising whole batches vs each image (pipeline, training)"),
    "train": ("bench_train.py", [], "the training loop's overhead against a bare loop, images/s and MFU per model"),
    "losscurve": ("bench_losscurve.py", [], "kit compare on a 1,000,000-line log against reading the lines"),
    "align": ("bench_align.py", [], "kit align dump of HiViT-base at batch 8 against a plain training step"),
    "imports": ("bench_imports.py", [], "each CLI's --help (kit, compare, align compare, data_prep) vs python -c pass"),
    "emulator": ("bench_emulator.py", [], "a training step on the emulated SDAA card against the same step on the CPU"),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench", help="where the outputs are kept")
    p.add_argument("--mmpretrain-site", default=os.environ.get("MMPRETRAIN_SITE"),
                   help="folder with mmpretrain 1.2.0 and its dependencies (default: $MMPRETRAIN_SITE)")
    args = p.parse_args(argv)

    env = dict(os.environ)
    paths = [str(REPO)] + ([args.mmpretrain_site] if args.mmpretrain_site else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else paths)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.only or BENCHMARKS:
        script, extra, what = BENCHMARKS[name]
        print(f"\n=== {name}: {what}\n", flush=True)
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(REPO / "bench" / script), *extra], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        code = proc.wait()
        lines.append(f"\n[{script} exit {code}, {time.perf_counter() - start:.0f} s]\n")
        tmp = args.out / f".{name}.txt.tmp"
        tmp.write_text("".join(lines))
        tmp.replace(args.out / f"{name}.txt")
        if code:
            failed.append(name)
    print(f"\nOutputs in {args.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
