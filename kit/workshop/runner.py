"""The workshop, headless: run the notebooks in order with papermill and summarise what they did.

``kit workshop --out runs/NAME`` is what ``make run`` calls. Each notebook receives the same
parameters (device, data and output folders, quick mode, ...), writes its figures and a small JSON
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
checked (:func:`check_notebook_parameters`, as each notebook's first code cell checks them) before the
first notebook runs. A :class:`UserError` raised inside a notebook (a bad setting, a busy run folder ...)
ends the workshop with exit code 2 and one line naming the notebook, not papermill's traceback.

An interrupted workshop (Ctrl-C, SIGKILL, a full disk, a failing notebook) rerun into the same folder goes on
where it stopped (:class:`ProgressRecord`). Nothing it started outlives it (:mod:`kit.core.lifetime`): its kernels'
process groups belong to a watchdog that kills them when the runner is gone, SIGKILL included, and each
notebook's group is killed when the notebook ends. Ctrl-C stops the running kernel, releases the folder's
lock and says in one line what finished (exit code 130).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from kit.core import diskfull, lifetime
from kit.core.atomic import atomic_savefig, atomic_write_text
from kit.core.errors import UserError
from kit.core.runlock import hold_run_folder
from kit.workshop.report import write_report
from kit.workshop.solutions import register as _register_solution_magic

_register_solution_magic()  # %%solution in a notebook kernel (kit.workshop.solutions): lab copies hide answers

NOTEBOOKS = (
    "00_setup_and_devices.ipynb",
    "01_dataset_prep.ipynb",
    "02_model_anatomy.ipynb",
    "03_port_it_yourself.ipynb",
    "04_training.ipynb",
    "05_loss_curve_validation.ipynb",
    "06_debugging_a_port.ipynb",
)

#: The environment variable that turns quick mode on for notebooks run without parameters (nbval, CI).
QUICK_ENV = "KIT_QUICK"


# --------------------------------------------------------------------------------------------
# Helpers the notebooks call
# --------------------------------------------------------------------------------------------


def check_notebook_parameters(namespace: Optional[Mapping[str, Any]] = None, **values: Any) -> None:
    """Refuse a bad parameter value in one line, before the notebook does anything with it.

    The first code cell after each notebook's parameters cell calls ``check_notebook_parameters(globals())``;
    the names the workshop knows (``device``, ``models``, ``epochs``, ``quick``, ``amp`` ...) are checked
    against :func:`kit.config.schema.notebook_parameters_schema`, the others pass. A bad value raises a
    :class:`UserError`, which a notebook shows as one line (``UserError: epochs = -1: must be an integer >= 1,
    or None (the recipe's own)``) and ``kit workshop`` reports naming the notebook, with exit code 2.
    """
    from kit.config import schema

    schema.check_notebook_parameters({**(namespace or {}), **values})


def resolve_quick(quick: Optional[bool]) -> bool:
    """A notebook's ``quick`` parameter: explicit True/False wins; ``None`` reads $KIT_QUICK."""
    if quick is None:
        return os.environ.get(QUICK_ENV, "0").strip().lower() in ("1", "true", "yes")
    return bool(quick)


def save_figure(fig, out_dir: str | Path, name: str) -> Path:
    """Save ``fig`` as ``out_dir/figures/name.png`` (atomically) and return the path."""
    path = Path(out_dir) / "figures" / f"{name}.png"
    atomic_savefig(fig, path, dpi=110, bbox_inches="tight")
    return path


def show_figure(fig, out_dir: str | Path, name: str) -> None:
    """Save ``fig`` (as :func:`save_figure` does) and show that very PNG in the notebook.

    This is how every notebook puts a figure on screen. ``display(fig)`` and ``plt.show()`` both depend on the
    state of matplotlib's inline backend: a plain ``matplotlib.figure.Figure`` (what the kit's plot functions
    return) is drawn as an image only once the kernel has made its first pyplot figure -- before that it shows
    as the text ``<Figure size ...>`` -- and ``plt.show()`` shows pyplot's own figures only. A PNG is drawn the
    same way by JupyterLab, the classic Notebook, VS Code and papermill, whatever the backend, and what the
    learner sees is exactly the file in the run folder. A figure pyplot manages is closed afterwards, or the
    inline backend would show it a second time at the end of the cell. Returns nothing, so that a call ending
    a cell adds no ``PosixPath(...)`` line under the figure.
    """
    display_png(save_figure(fig, out_dir, name).read_bytes())
    close_if_pyplot(fig)


def display_png(png: bytes) -> None:
    """Show PNG bytes as a notebook output; nothing at all outside IPython (a script prints no object repr)."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Image(data=png, format="png"))


def close_if_pyplot(fig) -> None:
    """Forget ``fig`` in pyplot if pyplot made it (a plain Figure is left alone: pyplot never knew it)."""
    import sys

    if "matplotlib.pyplot" in sys.modules:  # never import pyplot just to learn that it holds nothing
        sys.modules["matplotlib.pyplot"].close(fig)


def interact(draw: Callable[..., None], interactive: bool, **controls: tuple) -> None:
    """Call ``draw(**values)`` under sliders in JupyterLab; once, with the default values, anywhere else.

    ``controls`` maps each keyword of ``draw`` to ``(default, low, high, step)``; the kind of slider (int or
    float) follows the default. Interactive (``interactive=True`` and ipywidgets present): ``ipywidgets.interact``
    redraws when a slider is released. Headless (papermill, ``kit workshop``, which pass ``interactive=False``):
    ``draw`` runs once with the defaults, so the executed notebook and its report show the same cell statically.
    ``draw`` shows its own output (e.g. through :func:`show_figure`) and raises if a check fails.
    """
    defaults = {name: spec[0] for name, spec in controls.items()}
    try:
        import ipywidgets as widgets
    except ImportError:
        interactive = False
    if not interactive:
        draw(**defaults)
        return
    sliders = {}
    for name, (default, low, high, step) in controls.items():
        kind = widgets.IntSlider if isinstance(default, int) and not isinstance(default, bool) else widgets.FloatSlider
        sliders[name] = kind(value=default, min=low, max=high, step=step, description=name, continuous_update=False)
    widgets.interact(draw, **sliders)


def save_json(out_dir: str | Path, name: str, obj: Any) -> Path:
    path = Path(out_dir) / f"{name}.json"
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")
    return path


def load_json(out_dir: str | Path, name: str) -> Optional[dict]:
    path = Path(out_dir) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


ASSETS = Path(__file__).resolve().parents[1] / "assets"


def reference_curve_path(recipe: str) -> Path:
    """The shipped CPU fp32 loss curve of workshop recipe ``recipe`` (see assets/reference_curves/README.md)."""
    path = ASSETS / "reference_curves" / f"{recipe}.metrics.jsonl"
    if not path.exists():
        raise UserError(f"no shipped reference curve for recipe {recipe!r} (looked for {path})")
    return path


def reference_ensemble_paths(recipe: str, kind: str = "member") -> list[Path]:
    """The shipped reference ensemble of workshop recipe ``recipe`` (see assets/reference_ensembles/README.md):
    its numerically perturbed runs of seed 0 (``kind="member"``), or its runs with other seeds (``"seed"``)."""
    folder = ASSETS / "reference_ensembles" / recipe
    paths = sorted(folder.glob(f"{kind}_*.metrics.jsonl"))
    if len(paths) < 2:
        raise UserError(f"no shipped reference ensemble ({kind} runs) for recipe {recipe!r} in {folder}")
    return paths


#: The trained weights of the workshop models (see assets/workshop_checkpoints/README.md).
WORKSHOP_CHECKPOINTS = ASSETS / "workshop_checkpoints"


def workshop_checkpoints() -> dict:
    """The manifest of the shipped trained workshop checkpoints: ``{"models": {model: {"file", "sha256", "recipe",
    "seed", "val_acc1", "torch", "timm", "command", ...}}, ...}`` (written by bench/make_workshop_checkpoints.py)."""
    path = WORKSHOP_CHECKPOINTS / "manifest.json"
    if not path.exists():
        raise UserError(f"no shipped workshop checkpoints (looked for {path}); "
                        "make them with `python bench/make_workshop_checkpoints.py --data data/digits`")
    return json.loads(path.read_text())


def workshop_checkpoint(model: str) -> Path:
    """The shipped trained weights of workshop model ``model``: a file ``kit.models.create(model, checkpoint=...)``
    loads strictly."""
    entry = workshop_checkpoints()["models"].get(model)
    if entry is None:
        raise UserError(f"no shipped trained checkpoint for {model!r} (in {WORKSHOP_CHECKPOINTS})")
    return WORKSHOP_CHECKPOINTS / entry["file"]


def modelzoo_logs_dir() -> Path:
    """The real logs of the ModelZoo's CaiT and HiViT ports (byte-exact copies; see SOURCES.md there)."""
    return ASSETS / "modelzoo_logs"


def notebooks_dir() -> Path:
    """The repository's notebooks/ folder (the kit is used from a clone, installed editable)."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    if not (here / NOTEBOOKS[0]).exists():
        raise UserError(f"the workshop notebooks are not at {here}; run the workshop from a clone of the repository")
    return here


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

#: Parameters the workshop sets from its own options; ``-p`` may not move the run folder under its feet.
RESERVED = {"out_dir": "--out"}


def parse_parameter(value: str):
    """A ``-p`` value as ``papermill -p`` reads it: True, False, None, an int, a float, or else the string.

    Papermill's own command line does exactly this (``papermill.cli._resolve_type``); it is used when present
    so that ``kit workshop -p`` and ``papermill -p`` can never disagree.
    """
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
    from kit.config import schema

    for name in parameters:
        if name in RESERVED:
            raise UserError(f"-p {name}: the workshop sets {name} itself; use {RESERVED[name]} instead")
        if not any(name in names for names in declared.values()):
            known = ", ".join(sorted(set().union(*declared.values()) - set(RESERVED)))
            raise UserError(f"-p {name}: no workshop notebook declares a parameter {name!r} (they declare: {known})")
    schema.check_notebook_parameters(parameters, origins={name: f"-p {name}" for name in parameters})


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
                                           kernel_manager_class=lifetime.tied_kernel_manager(guard))
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


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/workshop", help="run folder to create (default runs/workshop)")
    parser.add_argument("--device", default="auto", help="auto, sdaa, sdaa:N, cuda, cuda:N, mps or cpu")
    parser.add_argument("--quick", action="store_true", help="a few training steps only (for CI and a first look)")
    parser.add_argument("--data", default=None, help="where to write/read the embedded dataset (default: data/digits)")
    parser.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a notebook parameter, as papermill -p does (repeatable): -p epochs 5 -p amp true")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="run the workshop once per value (repeatable: the grid) into OUT/sweep/, one table "
                             "OUT/sweep.csv (see kit.workshop.sweep)")
    parser.add_argument("--jobs", type=int, default=1, help="with --sweep: how many sets run at once (default 1)")
    parser.add_argument("--metric", default="val_acc1",
                        help="with --sweep: the summary.json number the report plots (default val_acc1, per model)")


def run(args: argparse.Namespace) -> int:
    import sys

    from kit.device.shim import resolve

    parameters = {name: parse_parameter(value) for name, value in args.parameters}
    check_parameters(parameters, declared_parameters())  # before anything runs: exit 2 naming the name
    if args.jobs != 1 and not args.sweep:
        raise UserError("--jobs: only with --sweep (one workshop runs its notebooks in order)")
    resolve(str(parameters.get("device", args.device)))  # fail early, with the shim's message, on a missing device
    if args.sweep:
        from kit.workshop import sweep

        return sweep.run(args, parameters)
    try:
        summary = run_workshop(args.out, device=args.device, quick=args.quick, data=args.data, parameters=parameters)
    except WorkshopFailed as e:
        print(f"kit workshop: {e}")
        return 1
    except WorkshopInterrupted as e:
        print(f"kit workshop: {e}", file=sys.stderr)
        return 130
    print(summary_markdown(summary, Path(args.out)))
    print(f"Results: {Path(args.out) / 'summary.md'}; the report to open in a browser: {Path(args.out) / 'index.html'}")
    return 0  # a failed loss-curve verdict is a result of the workshop, reported above, not an error
