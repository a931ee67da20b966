"""``kit workshop --sweep``: the same notebooks over a grid of parameter sets, and one table of what they gave.

Why: in a workshop papermill's job is to run the notebooks for every learner's seed, an lr or mask-ratio sweep, each
model -- and then someone must collect the numbers. ``--sweep NAME=V1,V2,...`` (repeatable: the grid is the product)
runs :func:`kit.workshop.runner.run_workshop` once per set, each into a run folder of its own, and reads the results
from
what every run already records (its ``summary.json``), never from the notebooks' printed outputs::

    OUT/sweep/<set>/        one ordinary workshop run folder per set (index.html, summary.json, notebooks/ ...)
    OUT/sweep.csv           one row per set: its values, done/failed (and where), the numbers of its summary.json
    OUT/index.html          the sweep report: the table, a plot of --metric against each swept parameter, links
    OUT/figures/sweep_*.png those plots

Values are read as ``-p`` reads them (papermill's rules); commas inside brackets do not split (``models=["a"]``).
Every set is checked before anything runs (an unknown name, an empty list, a value a notebook refuses: one line,
exit 2). ``--jobs N`` runs N sets at once (threads: each set's work is in its own kernels). It is resumable: a set
whose folder holds a finished run with the same parameters is not run again, and an interrupted one goes on where it
stopped (:class:`kit.workshop.runner.ProgressRecord`). A set that fails is recorded as failed, with its notebook and
cell,
and the sweep goes on; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import itertools
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

from kit.core.atomic import atomic_savefig, atomic_write_text
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder
from kit.workshop import runner as workshop
from kit.workshop.assets import NOTEBOOKS
from kit.workshop.notebook import save_json
from kit.workshop.report import STYLE

__all__ = [
    "FAILURE",
    "split_values",
    "parse_sweeps",
    "grid_sets",
    "set_name",
    "check_sets",
    "flatten",
    "finished_summary",
    "run_sweep",
    "columns",
    "write_table",
    "metric_columns",
    "plot",
]

FAILURE = "sweep_failure.json"  # in a set's folder: why its last attempt failed (removed when it succeeds)


def split_values(text: str) -> list[str]:
    """``a,b,[c,d]`` -> ``["a", "b", "[c,d]"]``: commas split, except inside brackets or quotes."""
    values, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(current)
            current = ""
            continue
        current += ch
    return values + [current]


def parse_sweeps(specs: list[str], fixed: dict) -> dict[str, list]:
    """``["seed=0,1", "lr=0.1,0.2"]`` -> ``{"seed": [0, 1], "lr": [0.1, 0.2]}``, or a :class:`UserError`."""
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"--sweep {spec}: expected NAME=V1,V2,... (e.g. --sweep epochs=1,2)")
        texts = [t.strip() for t in split_values(text)]
        if not text.strip() or any(not t for t in texts):
            raise UserError(f"--sweep {spec}: an empty value; give NAME=V1,V2,... with every value written")
        if name in grid:
            raise UserError(f"--sweep {name}: swept twice; give all its values in one --sweep")
        if name in fixed:
            raise UserError(f"--sweep {name}: also set with -p {name}; give it one way")
        grid[name] = [workshop.parse_parameter(t) for t in texts]
    return grid


def grid_sets(grid: dict[str, list]) -> list[dict]:
    """Every combination, in order (the last parameter varies fastest)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def set_name(values: dict) -> str:
    """A folder name for one set, readable and safe: ``seed-0_lr-0.1``."""
    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._+-]+", "~", text).strip("~") or "~"

    return "_".join(f"{clean(str(k))}-{clean(json.dumps(v) if not isinstance(v, str) else v)}"
                    for k, v in values.items())


def check_sets(sets: list[dict], fixed: dict, declared: dict[str, set[str]]) -> None:
    """Every set, with the fixed ``-p`` values, as the workshop checks one run: before anything runs."""
    for values in sets:
        try:
            workshop.check_parameters(fixed | values, declared)
        except UserError as e:
            raise UserError(str(e).replace("-p ", "--sweep ", 1)) from None
    names = [set_name(s) for s in sets]
    if len(set(names)) != len(names):
        raise UserError("--sweep: two sets would share a run folder (values that differ only in punctuation)")


def flatten(summary: dict) -> dict:
    """The numbers of one summary.json as table columns: ``wall_seconds``, ``validation_passed``,
    ``<model>.val_acc1``, ``<model>.train_seconds``."""
    row = {"wall_seconds": summary.get("wall_seconds"),
           "validation_passed": (summary.get("validation") or {}).get("passed")}
    for m in summary.get("models", []):
        for key in ("val_acc1", "train_seconds"):
            row[f"{m.get('model')}.{key}"] = m.get(key)
    return row


def finished_summary(folder: Path, params: dict) -> Optional[dict]:
    """The summary.json of a finished run in ``folder`` made with ``params``, else None (run it)."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    unfinished = (folder / workshop.ProgressRecord.NAME).exists() or (folder / FAILURE).exists()
    same = summary.get("parameters") == json.loads(json.dumps(params, default=str))
    return summary if same and not unfinished else None


def run_sweep(out: str | Path, grid: dict[str, list], device: str = "auto", quick: bool = False,
              data: str | Path | None = None, parameters: dict | None = None, jobs: int = 1,
              metric: str = "val_acc1", notebooks: tuple[str, ...] = NOTEBOOKS,
              log: Callable[[str], None] = print) -> list[dict]:
    """Run every set of ``grid`` (checked first), write sweep.csv and the report; return the table's rows."""
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: must be at least 1")
    out, fixed = Path(out).resolve(), dict(parameters or {})
    data = Path(data or "data/digits").resolve()
    sets = grid_sets(grid)
    check_sets(sets, fixed, workshop.declared_parameters(notebooks))

    def one(values: dict) -> dict:
        folder = out / "sweep" / set_name(values)
        row = {"set": set_name(values)} | values
        params = {"device": device, "quick": bool(quick), "data_dir": str(data), "out_dir": str(folder),
                  "interactive": False} | fixed | values
        if (summary := finished_summary(folder, params)) is not None:
            log(f"[sweep] {row['set']}: finished in an earlier sweep, not run again")
            return row | {"status": "done", "failed_in": ""} | flatten(summary)
        log(f"[sweep] {row['set']} ...")
        try:
            summary = workshop.run_workshop(folder, device=device, quick=quick, data=data, notebooks=notebooks,
                                            parameters=fixed | values,
                                            log=lambda line: log(f"[{row['set']}] {line}"))
        except (workshop.WorkshopFailed, UserError) as e:
            where = (f"{e.notebook} cell {e.cell}" if isinstance(e, workshop.WorkshopFailed) and e.notebook
                     else str(e).split(":")[0].removeprefix("notebook "))
            folder.mkdir(parents=True, exist_ok=True)
            save_json(folder, Path(FAILURE).stem, {"failed_in": where, "error": str(e)})
            log(f"[sweep] {row['set']}: FAILED in {where}: {e}")
            return row | {"status": "failed", "failed_in": where}
        (folder / FAILURE).unlink(missing_ok=True)
        log(f"[sweep] {row['set']}: done")
        return row | {"status": "done", "failed_in": ""} | flatten(summary)

    with hold_run_folder(out, "kit workshop --sweep"):  # a second sweep into OUT fails at once, in one line
        log(f"[sweep] {len(sets)} set(s) of {', '.join(grid)} into {out / 'sweep'}, {jobs} at a time")
        if jobs == 1:
            rows = [one(values) for values in sets]
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                rows = list(pool.map(one, sets))
        write_table(out, rows, list(grid))
        write_report(out, rows, list(grid), metric)
    return rows


def columns(rows: list[dict], swept: list[str]) -> list[str]:
    metrics = sorted({k for r in rows for k in r} - set(swept) - {"set", "status", "failed_in"})
    return ["set", *swept, "status", "failed_in", *metrics]


def write_table(out: Path, rows: list[dict], swept: list[str]) -> Path:
    """``OUT/sweep.csv``: one row per set, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows, swept), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "sweep.csv", buffer.getvalue(), what="the sweep table")
    return out / "sweep.csv"


def metric_columns(rows: list[dict], metric: str) -> list[str]:
    """The columns ``metric`` names: itself, or ``<model>.<metric>`` for each model."""
    keys = sorted({k for r in rows for k in r})
    return [k for k in keys if k == metric or k.endswith(f".{metric}")]


def plot(rows: list[dict], swept: list[str], metric: str):
    """One panel per swept parameter: ``metric`` (each of its columns) against that parameter's values."""
    import matplotlib.figure

    done = [r for r in rows if r["status"] == "done"]
    fig = matplotlib.figure.Figure(figsize=(4.2 * len(swept), 3.2))
    for i, name in enumerate(swept):
        ax = fig.add_subplot(1, len(swept), i + 1)
        order = list(dict.fromkeys(r[name] for r in rows))
        for column in metric_columns(done, metric):
            points = [(order.index(r[name]), r[column]) for r in done if isinstance(r.get(column), (int, float))]
            if points:
                ax.plot(*zip(*points), "o", label=column, alpha=0.8)
        ax.set_xticks(range(len(order)), [str(v) for v in order])
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_report(out: Path, rows: list[dict], swept: list[str], metric: str) -> Path:
    """``OUT/index.html``: the sweep section (table, plot, a link to each set's own report)."""
    figure = out / "figures" / "sweep_metric.png"
    atomic_savefig(plot(rows, swept, metric), figure, dpi=110, bbox_inches="tight")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns(rows, swept))
    body = []
    for r in rows:
        cells = []
        for c in columns(rows, swept):
            value = "" if r.get(c) is None else r.get(c)
            text = html.escape(str(value))
            if c == "set" and (out / "sweep" / r["set"] / "index.html").exists():
                text = f'<a href="sweep/{html.escape(r["set"])}/index.html">{text}</a>'
            elif c == "status":
                text = f'<span class="{"pass" if value == "done" else "fail"}">{text}</span>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    failed = sum(r["status"] != "done" for r in rows)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sweep report: {html.escape(out.name)}</title><style>{STYLE}</style></head>
<body>
<h1>Sweep report: {html.escape(out.name)}</h1>
<h2>Sweep</h2>
<p>{len(rows)} set(s) over {html.escape(", ".join(swept))}; {failed} failed. The same table:
<a href="sweep.csv">sweep.csv</a>. Each set's own report is linked from its name.</p>
<table><tr>{head}</tr>
{chr(10).join(body)}</table>
<figure><a href="figures/{figure.name}"><img src="figures/{figure.name}" alt="{html.escape(metric)}"></a>
<figcaption>{html.escape(metric)} against each swept parameter</figcaption></figure>
</body>
</html>
"""
    atomic_write_text(out / "index.html", page, what="the sweep report")
    return out / "index.html"


def run(args: argparse.Namespace, parameters: dict) -> int:
    """``kit workshop --sweep``: check, run, say where the table is; 1 if any set failed."""
    grid = parse_sweeps(args.sweep, parameters)
    try:
        rows = run_sweep(args.out, grid, device=args.device, quick=args.quick, data=args.data,
                         parameters=parameters, jobs=args.jobs, metric=args.metric)
    except workshop.WorkshopInterrupted as e:  # --jobs 1: the set's kernel is stopped, its folder released
        print(f"kit workshop --sweep: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        # Sets running in other threads end with this process: each set's watchdog kills its kernels when the
        # process is gone, and each folder's lock goes with it. The same command goes on from there.
        print("kit workshop --sweep: interrupted; the same command goes on where it stopped", file=sys.stderr)
        sys.stderr.flush()
        os._exit(130)
    failed = [r for r in rows if r["status"] != "done"]
    print(f"Sweep: {len(rows) - len(failed)} of {len(rows)} set(s) done; table {Path(args.out) / 'sweep.csv'}; "
          f"report {Path(args.out) / 'index.html'}")
    for r in failed:
        print(f"  failed: {r['set']} in {r['failed_in']} ({Path(args.out) / 'sweep' / r['set'] / FAILURE})")
    return 1 if failed else 0
