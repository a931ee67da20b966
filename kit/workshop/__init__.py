"""What the notebooks use: helpers, shipped assets, the papermill runner, the report, the live plot.

    assets.py       What the kit ships beside its code: the notebooks, reference curves and ensembles, checkpoints
    command.py      ``kit workshop``: the notebooks headless, or a sweep of them
    labcopy.py      The learners' working copies of the notebooks (``make lab``)
    liveplot.py     A live loss plot for notebooks, fed by the trainer's ``on_step`` / ``on_eval`` callbacks
    notebook.py     The helpers every notebook calls: parameters checked, quick mode, figures and results saved
    port.py         Notebook 3's helpers: the shipped CUDA, SDAA and CPU scripts, their diff, running a script
    report.py       The workshop's run report: ``runs/NAME/index.html``, one page anyone can open from the file system
    runner.py       The workshop, headless: run the notebooks in order with papermill and summarise what they did
    solutions.py    Solutions that a learner's Run All does not give away
    sweep.py        ``kit workshop --sweep``: the same notebooks over a grid of parameter sets
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # assets
    "NOTEBOOKS": "assets",
    "ASSETS": "assets",
    "reference_curve_path": "assets",
    "reference_ensemble_paths": "assets",
    "WORKSHOP_CHECKPOINTS": "assets",
    "workshop_checkpoints": "assets",
    "workshop_checkpoint": "assets",
    "modelzoo_logs_dir": "assets",
    "notebooks_dir": "assets",
    # labcopy
    "record": "labcopy",
    "base_of": "labcopy",
    "lab_text": "labcopy",
    "copy": "labcopy",
    "conflicts": "labcopy",
    "merge_one": "labcopy",
    "update": "labcopy",
    # liveplot
    "LiveLossPlot": "liveplot",
    # notebook
    "QUICK_ENV": "notebook",
    "check_notebook_parameters": "notebook",
    "resolve_quick": "notebook",
    "save_figure": "notebook",
    "show_figure": "notebook",
    "display_png": "notebook",
    "close_if_pyplot": "notebook",
    "interact": "notebook",
    "save_json": "notebook",
    "load_json": "notebook",
    # report
    "STYLE": "report",
    "notebook_html_name": "report",
    "render_notebook": "report",
    "report_html": "report",
    "write_report": "report",
    # runner
    "RESERVED": "runner",
    "parse_parameter": "runner",
    "declared_parameters": "runner",
    "check_parameters": "runner",
    "user_error_in": "runner",
    "run_workshop": "runner",
    "WorkshopFailed": "runner",
    "WorkshopInterrupted": "runner",
    "ProgressRecord": "runner",
    "summarise": "runner",
    "summary_markdown": "runner",
    # solutions
    "HIDDEN_TAGS": "solutions",
    "MAGIC": "solutions",
    "HELD_BACK": "solutions",
    "solution": "solutions",
    "register": "solutions",
    "is_hidden": "solutions",
    "lab_notebook": "solutions",
    "lab_copy": "solutions",
    # sweep
    "FAILURE": "sweep",
    "split_values": "sweep",
    "parse_sweeps": "sweep",
    "grid_sets": "sweep",
    "set_name": "sweep",
    "check_sets": "sweep",
    "flatten": "sweep",
    "finished_summary": "sweep",
    "run_sweep": "sweep",
    "columns": "sweep",
    "write_table": "sweep",
    "metric_columns": "sweep",
    "plot": "sweep",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
