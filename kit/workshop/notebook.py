"""The helpers every notebook calls: its parameters checked, quick mode, figures and results saved and shown.

The notebooks reach them as ``kit.workshop.<helper>`` (the package's lazy face). Importing this module also
registers the ``%%solution`` cell magic (:mod:`kit.workshop.solutions`) in a notebook's kernel: each notebook's
first code cell calls :func:`check_notebook_parameters`, so the magic is in place before any held-back cell of a
learner's copy runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from kit.core.atomic import atomic_savefig, atomic_write_text
from kit.workshop.solutions import register as _register_solution_magic

__all__ = [
    "QUICK_ENV",
    "check_notebook_parameters",
    "resolve_quick",
    "save_figure",
    "show_figure",
    "display_png",
    "close_if_pyplot",
    "interact",
    "save_json",
    "load_json",
]

_register_solution_magic()  # %%solution in a notebook kernel (kit.workshop.solutions): lab copies hide answers

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
    from kit.config import checks

    checks.check_notebook_parameters({**(namespace or {}), **values})


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
    """Write ``obj`` as ``out_dir/name.json`` (atomically: the next notebook never reads half a file)."""
    path = Path(out_dir) / f"{name}.json"
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")
    return path


def load_json(out_dir: str | Path, name: str) -> Optional[dict]:
    """What an earlier notebook saved as ``out_dir/name.json``, or None if it has not run."""
    path = Path(out_dir) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
