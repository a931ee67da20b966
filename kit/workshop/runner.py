"""The workshop, headless: run the notebooks in order with papermill and summarise what they did.

``kit workshop --out runs/NAME`` (:mod:`kit.workshop.command`) is what ``make run`` calls. Each notebook receives
the same parameters (device, data and output folders, quick mode, ...), writes its figures and a small JSON
of its results into the run folder, and the next one reads what it needs from there — so the
notebooks stay independent lessons that also run one by one in JupyterLab.

What a run leaves in ``runs/NAME/``::

    index.html                  the run report: summary, the executed notebooks as HTML, the figures
    (kit.workshop.report)
    notebooks/00_...ipynb ...   the executed notebooks, outputs included (and each as .html)
    figures/*.png               every figure the notebooks drew
    device.json                 what notebook 0 found and chose
    anatomy.json                notebook 2: forward FLOPs per image of each workshop model
    training.json               notebook 4: per model, accuracy, time, MFU, run folder
    validation.json             notebook 5: the loss-curve verdicts
    debugging.json              notebook 6: the planted port bugs and each rule's verdict on them
    train/<model>/              the training runs (metrics.jsonl, train.log, config.json, last.pth, best.pth)
    debugging/<bug>/            notebook 6's short alignment runs
    summary.json, summary.md    the roll-up below (summary.json also records the parameters passed)
    workshop_progress.json      only while a run is unfinished: the notebooks it completed (:class:`ProgressRecord`)

``-p NAME VALUE`` (papermill's own flag, repeatable) sets any parameter a notebook declares in its
``parameters`` cell, e.g. ``-p epochs 5 -p amp true``; values are parsed as papermill parses them, and
checked (:func:`kit.workshop.notebook.check_notebook_parameters`, as each notebook's first code cell checks
them) before the first notebook runs. A :class:`UserError` raised inside a notebook (a bad setting, a busy run
folder ...) ends the workshop with exit code 2 and one line naming the notebook, not papermill's traceback.

An interrupted workshop (Ctrl-C, SIGKILL, a full disk, a failing notebook) rerun into the same folder goes on
where it stopped (:class:`ProgressRecord`). Nothing it started outlives it (:mod:`kit.core.lifetime`): its kernels'
process groups belong to a watchdog that kills them when the runner is gone, SIGKILL included, and each
notebook's group is killed when the notebook ends. Ctrl-C stops the running kernel, releases the folder's
lock and says in one line what finished (exit code 130).
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from kit.core import diskfull, lifetime
from kit.core.atomic import atomic_write_text
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder
from kit.workshop.assets import NOTEBOOKS, notebooks_dir
from kit.workshop.notebook import check_notebook_parameters, load_json, save_json
from kit.workshop.report import write_report

__all__ = [
    "RESERVED",
    "parse_parameter",
    "declared_parameters",
    "check_parameters",
    "user_error_in",
    "run_workshop",
    "WorkshopFailed",
    "WorkshopInterrupted",
    "ProgressRecord",
    "summarise",
    "summary_markdown",
]

#: ipykernel >= 7 logs "Kernel is running over TCP without encryption" as each kernel starts: one warning per
#: notebook in `kit workshop`'s output, about the loopback connection papermill itself opened. The kernel's own
#: log is kept to errors; what the notebooks print and warn is not touched.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

#: Parameters the workshop sets from its own options; ``-p`` may not move the run folder under its feet.
RESERVED = {"out_dir": "--out"}


def parse_parameter(value: str):
    """A ``-p`` value as ``papermill -p`` reads it: True, False, None, an int, a float, or else the string --
    except a JSON list or object (``["hivit_workshop_32"]``), which is read as one.

    Papermill's own command line does the first part (``papermill.cli._resolve_type``); it is used when present
    so that ``kit workshop -p`` and ``papermill -p`` agree on every value papermill can pass. Papermill's ``-p``
    has no lists (it leaves ``-y`` YAML for them); a notebook parameter such as ``models`` is one, and a string
    that merely looks like a list is no value any notebook accepts, so reading it as JSON takes nothing away.
    """
    if value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value  # the notebook's parameter check names it and says what it must be
    try:
        from papermill.cli import _resolve_type
    except ImportError:  # a papermill without it: the same rules, spelled out
        for literal, result in (("True", True), ("False", False), ("None", None)):
            if value == literal:
                return result
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value
    return _resolve_type(value)


def declared_parameters(notebooks: tuple[str, ...] = NOTEBOOKS) -> dict[str, set[str]]:
    """``{notebook: names in its parameters cell}``, read by papermill's own inspection."""
    from papermill.inspection import inspect_notebook

    src = notebooks_dir()
    return {name: set(inspect_notebook(src / name)) for name in notebooks}


def check_parameters(parameters: dict, declared: dict[str, set[str]]) -> None:
    """Refuse a name no notebook declares (papermill itself would only log a warning and run on), and a bad
    value (:func:`check_notebook_parameters`, the check each notebook makes itself), before any notebook runs."""
    from kit.config import checks

    for name in parameters:
        if name in RESERVED:
            raise UserError(f"-p {name}: the workshop sets {name} itself; use {RESERVED[name]} instead")
        if not any(name in names for names in declared.values()):
            known = ", ".join(sorted(set().union(*declared.values()) - set(RESERVED)))
            raise UserError(f"-p {name}: no workshop notebook declares a parameter {name!r} (they declare: {known})")
    checks.check_notebook_parameters(parameters, origins={name: f"-p {name}" for name in parameters})


def user_error_in(error: Any) -> Optional[str]:
    """The message of a :class:`UserError` a notebook raised (papermill's ``PapermillExecutionError``), else None.

    IPython renders a user error as the single line ``<ename>: <message>`` (``UserError._render_traceback_``),
    where any other exception gets a traceback of many lines: that rendering is how it is recognised.
    """
    traceback = [str(line) for line in (getattr(error, "traceback", None) or [])]
    ename, evalue = getattr(error, "ename", None), getattr(error, "evalue", None)
    return evalue if ename and traceback == [f"{ename}: {evalue}"] else None


# --------------------------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------------------------


def run_workshop(
    out: str | Path,
    device: str = "auto",
    quick: bool = False,
    data: str | Path | None = None,
    notebooks: tuple[str, ...] = NOTEBOOKS,
    log: Callable[[str], None] = print,
    parameters: dict | None = None,
) -> dict:
    """Execute ``notebooks`` in order into ``out`` and write ``summary.json`` / ``summary.md``.

    ``parameters`` (``-p``) win over the values the other arguments give; each notebook receives the ones its
    parameters cell declares, so papermill never warns about the others. ``out`` is locked for the whole run
    (:mod:`kit.core.runlock`): a second workshop into it fails at once.
    """
    from kit.config.schema import import_jsonschema

    import_jsonschema()  # before papermill, whose nbformat would import jsonschema with its slow IRI checker
    import papermill

    start = time.perf_counter()
    out = Path(out).resolve()
    data = Path(data or "data/digits").resolve()
    src = notebooks_dir()
    declared = declared_parameters(notebooks)
    check_parameters(parameters or {}, declared)
    params = {"device": device, "quick": bool(quick), "data_dir": str(data), "out_dir": str(out), "interactive": False}
    params.update(parameters or {})
    check_notebook_parameters(params)  # (--device too) before the run folder is made
    with hold_run_folder(out, "kit workshop"), lifetime.watchdog() as guard, _interrupted_by_sigterm():
        (out / "notebooks").mkdir(parents=True, exist_ok=True)
        record = ProgressRecord(out, params, log)
        timings = []
        for name in notebooks:
            if (earlier := record.finished(name)) is not None:
                log(f"[workshop] {name} finished in the interrupted run ({earlier['seconds']:.1f} s): not rerun")
                timings.append(earlier)
                continue
            log(f"[workshop] {name} ...")
            t0 = time.perf_counter()
            target = out / "notebooks" / name
            try:
                # shutdown_kernel="immediate": the last cell has finished and every file is written; a graceful
                # shutdown only waits 1.5-3 s per notebook for a kernel with torch loaded to finalise (13 s a run).
                # The kernel's process group belongs to `guard` (kit.core.lifetime): nothing it starts outlives the run.
                papermill.execute_notebook(str(src / name), str(target), cwd=str(src), progress_bar=False,
                                           parameters={k: v for k, v in params.items() if k in declared[name]},
                                           kernel_name="python3", shutdown_kernel="immediate",
                                           kernel_manager_class=lifetime.tied_kernel_manager(guard),
                                           extra_arguments=KERNEL_ARGUMENTS)
            except papermill.PapermillExecutionError as e:
                message = user_error_in(e)
                if message is not None:  # a setting the user can fix: one line, exit code 2
                    raise UserError(f"notebook {name}: {message}") from None
                raise WorkshopFailed(f"{name} failed in cell {e.exec_count}: {e.ename}: {e.evalue} "
                                     f"(executed notebook: {target})", notebook=name, cell=e.exec_count) from None
            except KeyboardInterrupt:
                guard.release()  # the kernel and whatever its cells started, before the lock goes
                raise WorkshopInterrupted(f"interrupted in {name}; {record.describe()}") from None
            except Exception as e:  # noqa: BLE001 - papermill writing the executed notebook onto a full disk
                if not diskfull.is_out_of_space(e, target):
                    raise
                raise diskfull.disk_full("the executed notebook", target, intact=record.describe()) from None
            finally:
                guard.release()
            timings.append({"notebook": name, "seconds": round(time.perf_counter() - t0, 2)})
            record.done(timings[-1])
            log(f"[workshop] {name} done in {timings[-1]['seconds']:.1f} s")
        summary = summarise(out, time.perf_counter() - start, timings) | {"parameters": params}
        save_json(out, "summary", summary)
        atomic_write_text(out / "summary.md", summary_markdown(summary, out), what="the workshop summary")
        write_report(out, summary)
        record.clear()
    return summary


class WorkshopFailed(Exception):
    """A notebook raised: not a user error, but not a kit traceback either; exit code 1."""

    def __init__(self, message: str, notebook: Optional[str] = None, cell: Optional[int] = None):
        super().__init__(message)
        self.notebook, self.cell = notebook, cell


class WorkshopInterrupted(Exception):
    """Ctrl-C (or SIGTERM): the running notebook's kernel is stopped, the folder released; exit code 130."""


@contextlib.contextmanager
def _interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a closing session) ends the workshop as Ctrl-C does: cleanly, in one line."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ProgressRecord:
    """``workshop_progress.json``: the notebooks an unfinished workshop completed, and the parameters they had.

    A workshop into a folder that holds an interrupted run (killed, Ctrl-C, a full disk, a failing notebook)
    goes on where it stopped: the notebooks it finished are not rerun, and the one it was in starts again from
    its first cell (the notebooks rewrite what they make). With other parameters than the record's, it starts
    over. A workshop that completes removes the record, so the next one into the folder runs everything again.
    """

    NAME = "workshop_progress.json"

    def __init__(self, out: Path, params: dict, log: Callable[[str], None]):
        self.path, self.params = out / self.NAME, json.loads(json.dumps(params, default=str))
        self.entries: list[dict] = []
        try:
            earlier = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if earlier.get("parameters") != self.params:
            log(f"[workshop] {out} holds an interrupted run with other parameters: starting over")
            return
        self.entries = [e for e in earlier.get("finished", []) if isinstance(e, dict) and "notebook" in e]
        if self.entries:
            log(f"[workshop] {out} holds an interrupted run: going on after {self.entries[-1]['notebook']} "
                f"({len(self.entries)} notebook(s) finished, recorded in {self.path.name})")

    def finished(self, name: str) -> Optional[dict]:
        return next((e for e in self.entries if e["notebook"] == name), None)

    def done(self, timing: dict) -> None:
        self.entries.append(timing)
        save_json(self.path.parent, self.path.stem, {"parameters": self.params, "finished": self.entries})

    def describe(self) -> str:
        names = ", ".join(e["notebook"] for e in self.entries) or "none"
        return f"finished: {names}; the same command goes on from there"

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def summarise(out: Path, wall_seconds: float, notebooks: list[dict] | None = None) -> dict:
    """Assemble summary.json from what the notebooks wrote (plus each notebook's wall seconds)."""
    device = load_json(out, "device") or {}
    training = load_json(out, "training") or {"models": []}
    validation = load_json(out, "validation") or {"passed": False, "note": "notebook 5 wrote no validation.json"}
    debugging = load_json(out, "debugging") or {}
    models = [
        {k: m.get(k) for k in ("model", "recipe", "val_acc1", "train_seconds")} | {"run_dir": m.get("run_dir")}
        for m in training.get("models", [])
    ]
    return {
        "models": models,
        "validation": validation,
        "debugging": [{k: b.get(k) for k in ("bug", "modelzoo", "strict", "noise")} for b in debugging.get("bugs", [])],
        "device": device.get("device", training.get("device", "unknown")),
        "device_emulated": bool(device.get("emulated", False)),
        "wall_seconds": round(wall_seconds, 2),
        "quick": training.get("quick"),
        "notebooks": notebooks or [],
    }


def summary_markdown(summary: dict, out: Path) -> str:
    lines = [
        "# Workshop summary",
        "",
        f"Device: `{summary['device']}`"
        + (" (EMULATED SDAA card: CPU numbers, never the card's)" if summary.get("device_emulated") else "")
        + f" · wall time {summary['wall_seconds']:.0f} s"
        + (" · quick mode" if summary.get("quick") else ""),
        "",
        "| model | recipe | val top-1 (%) | training time (s) |",
        "|---|---|---:|---:|",
    ]
    for m in summary["models"]:
        acc = "n/a" if m["val_acc1"] is None else f"{m['val_acc1']:.2f}"
        secs = "n/a" if m["train_seconds"] is None else f"{m['train_seconds']:.1f}"
        lines.append(f"| {m['model']} | {m['recipe']} | {acc} | {secs} |")
    v = summary["validation"]
    verdict = "pass" if v.get("passed") else "fail"
    lines += ["", f"Loss-curve validation against the shipped reference curves: **{verdict}**"]
    for item in v.get("models", []):
        lines.append(
            f"- {item.get('model')}: strict MRE {item.get('strict', {}).get('mean_relative_error', float('nan')):.4f} "
            f"({'pass' if item.get('strict', {}).get('passed') else 'fail'}), ModelZoo rule "
            f"{'pass' if item.get('legacy', {}).get('passed') else 'fail'}, {item.get('n_points')} points"
        )
    if summary.get("debugging"):
        lines += ["", "Planted port bugs (notebook 6), each rule's verdict:", "",
                  "| bug | ModelZoo | strict | noise-aware |", "|---|---|---|---|"]
        lines += [f"| {b['bug']} | {b['modelzoo']} | {b['strict']} | {b['noise']} |" for b in summary["debugging"]]
    if summary.get("notebooks"):
        per_notebook = ", ".join(f"{n['notebook']} {n['seconds']:.0f} s" for n in summary["notebooks"])
        lines += ["", "Time per notebook: " + per_notebook]
    figures = sorted((out / "figures").glob("*.png"))
    if figures:
        lines += ["", "Figures:", ""] + [f"- [{p.name}](figures/{p.name})" for p in figures]
    lines += ["", "Executed notebooks are in `notebooks/`; training runs in `train/`.", ""]
    return "\n".join(lines)
