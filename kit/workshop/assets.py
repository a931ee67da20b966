"""What the kit ships beside its code: the notebooks, reference curves and ensembles, trained checkpoints, logs.

One module names every shipped file, so that a notebook, a test or a bench script asks for a reference curve by
recipe and gets a one-line :class:`UserError` naming where it looked when the file is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from kit.core.errors import UserError

__all__ = [
    "NOTEBOOKS",
    "ASSETS",
    "reference_curve_path",
    "reference_ensemble_paths",
    "WORKSHOP_CHECKPOINTS",
    "workshop_checkpoints",
    "workshop_checkpoint",
    "modelzoo_logs_dir",
    "notebooks_dir",
]

#: The workshop notebooks, in the order they run.
NOTEBOOKS = (
    "00_setup_and_devices.ipynb",
    "01_dataset_prep.ipynb",
    "02_model_anatomy.ipynb",
    "03_port_it_yourself.ipynb",
    "04_training.ipynb",
    "05_loss_curve_validation.ipynb",
    "06_debugging_a_port.ipynb",
)

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
