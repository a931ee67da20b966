"""The configuration differences that matter between two runs or two alignment dumps, said before any number.

A loss curve or a layer that diverges is often no port bug at all but another batch size, learning
rate, precision or library version on one side. Both a run folder's ``config.json`` (written by
:mod:`kit.train.loop`) and a ``kit align dump`` index carry a config of the same shape,
``{"recipe": ..., "derived": ..., "environment": ...}``, and :func:`config_differences` reads either:

* every recipe value that differs (dotted keys), except those that cannot change the numbers:
  where the data and the outputs live, worker counts, caching, progress bars (:data:`IGNORED`);
* the derived values: global batch, learning rate, AMP policy, process count, and for dumps the
  digests of the initial weights, the batch's files and labels and the preprocessed input;
* the environment: kit, torch, torchvision, timm, numpy and Python versions, and the device.

A device difference is usually the point of the comparison; it is listed all the same, first.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

__all__ = ["IGNORED", "DERIVED", "VERSIONS", "flatten", "config_differences", "run_folder_config"]

#: Recipe keys whose values never change the computed numbers.
IGNORED = {"description", "source", "name", "data.path", "data.prepare", "data.num_workers", "data.cache_images",
           "run.out", "run.device", "run.progress", "run.overwrite", "run.resume", "run.save_every"}

#: Derived values worth a line, with their labels.
DERIVED = (("global_batch", "global batch"), ("lr", "lr"), ("warmup_lr", "warm-up lr"), ("precision", "AMP policy"),
           ("world_size", "processes"), ("num_classes", "classes"), ("optimizer", "optimizer"),
           ("steps_per_epoch", "steps per epoch"), ("weights_sha256", "initial weights (sha256)"),
           ("batch_sha256", "batch files and labels (sha256)"), ("input_sha256", "preprocessed input (sha256)"))

#: Environment entries worth a line.
VERSIONS = ("kit", "torch", "torchvision", "timm", "numpy", "python")

_ABSENT = object()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and tuples are leaves (as JSON lists)."""
    if not isinstance(tree, Mapping):
        return {prefix: json.loads(json.dumps(tree, default=str))}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value)


def _device(env: Mapping) -> Any:
    dev = env.get("device")
    if isinstance(dev, Mapping):
        return f"{dev.get('device', dev.get('type', '?'))} ({dev.get('name', '?')})"
    return _ABSENT if dev is None else dev


def config_differences(config_a: Mapping, config_b: Mapping) -> list[str]:
    """One line per difference that matters between two configs (``config.json`` of a run, or a dump's)."""
    env_a, env_b = config_a.get("environment") or {}, config_b.get("environment") or {}
    lines = []
    if env_a and env_b and _device(env_a) != _device(env_b):
        lines.append(f"device: {_show(_device(env_a))} vs {_show(_device(env_b))}")
    for key in VERSIONS:
        a, b = env_a.get(key, _ABSENT), env_b.get(key, _ABSENT)
        if env_a and env_b and a != b:
            lines.append(f"{key} version: {_show(a)} vs {_show(b)}")
    der_a, der_b = config_a.get("derived") or {}, config_b.get("derived") or {}
    for key, label in DERIVED:
        a, b = der_a.get(key, _ABSENT), der_b.get(key, _ABSENT)
        if a != b and not (a is _ABSENT and b is _ABSENT):
            lines.append(f"{label}: {_show(a)} vs {_show(b)}")
    rec_a, rec_b = flatten(config_a.get("recipe") or {}), flatten(config_b.get("recipe") or {})
    for key in sorted(set(rec_a) | set(rec_b)):
        a, b = rec_a.get(key, _ABSENT), rec_b.get(key, _ABSENT)
        if a != b and key not in IGNORED:
            lines.append(f"recipe {key}: {_show(a)} vs {_show(b)}")
    return lines


def run_folder_config(path: Any) -> dict | None:
    """The ``config.json`` of a kit run folder (or of the run folder holding a ``metrics.jsonl``), else None."""
    from pathlib import Path

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

