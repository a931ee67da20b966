"""Training recipes: the registered ones (:mod:`kit.config.registry`) by name, and resolved against overrides.

How overrides resolve (:func:`resolve`)
---------------------------------------
1. the registered recipe (:func:`get_recipe`), or a JSON file holding a recipe dict; a JSON recipe
   may name ``"base": "<recipe>"`` and give only the keys it changes (merged key by key);
2. ``--set dotted.key=value`` overrides, in the order given (``value`` is a Python/JSON literal,
   else a string); an unknown key is an error, so a typo cannot pass silently;
3. the named flags (``--data``, ``--out``, ``--epochs``, ``--batch-size``, ``--lr``, ``--device``,
   ``--amp``, ``--seed``, ``--max-steps``, ``--save-every``, ``--resume`` ...), which win over both;
4. the result is checked (:func:`kit.config.checks.check_recipe`) against :data:`kit.config.schema.RECIPE_SCHEMA`
   and its cross-checks: a bad value is a
   one-line :class:`UserError` naming the key, the value, the flag that set it and what is allowed, before
   anything runs (``recipe workshop_hivit: batch_size = 0 (from --batch-size): must be an integer >= 1``).

Values derived at run time (the learning rate scaled by the global batch, the warm-up start,
steps per epoch, world size) are not written back into the recipe: the trainer reports them in
``train.log`` and under ``"derived"`` in ``config.json``.

Batch size is **per device** (DeiT's and mmpretrain's convention: ``16xb64`` = 16 cards x 64);
the global batch is ``batch_size x world_size`` and the learning rate is scaled by it linearly:
``lr = optimizer.lr x global_batch / optimizer.lr_base_batch`` (DeiT: ``5e-4 x 64 x N / 512``).
``optimizer.lr_base_batch = None`` (``--unscale-lr``) uses ``optimizer.lr`` as given.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from kit.config.flags import FLAG_KEYS, flag_spelling
from kit.config.registry import NUMERICS_OFF, RECIPES, RUN_DEFAULTS
from kit.core.errors import UserError

__all__ = ["RUN_DEFAULTS", "NUMERICS_OFF", "RECIPES", "list_recipes", "get_recipe", "load_recipe", "parse_value",
           "set_key", "resolve", "scaled_lr", "describe"]


def list_recipes() -> list[str]:
    """The registered recipe names, sorted."""
    return sorted(RECIPES)


def get_recipe(name: str) -> dict:
    """A deep copy of recipe ``name`` with the run defaults filled in (safe to modify)."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; known recipes: {', '.join(list_recipes())}")
    recipe = copy.deepcopy(RECIPES[name])
    recipe["name"] = name
    recipe["run"] = dict(RUN_DEFAULTS)
    return recipe


def load_recipe(path: str | Path) -> dict:
    """A recipe from a JSON file: a full recipe dict, or ``{"base": NAME, ...changed keys...}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read recipe file {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe file holds one JSON object, not {type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:
        recipe = get_recipe(base)
        _merge(recipe, data, where=str(path))
    else:
        recipe = copy.deepcopy(data)
        recipe.setdefault("run", {})
        for key, value in RUN_DEFAULTS.items():
            recipe["run"].setdefault(key, value)
        missing = [k for k in ("model", "data", "optimizer", "schedule") if k not in recipe]
        if missing:
            raise UserError(f"{path}: a recipe without 'base' needs the keys {', '.join(missing)}")
    recipe["name"] = data.get("name", path.stem)
    return recipe


def _merge(into: dict, changes: Mapping, where: str, prefix: str = "") -> None:
    """Merge ``changes`` into ``into`` key by key; a key the recipe does not have is an error."""
    for key, value in changes.items():
        dotted = f"{prefix}{key}"
        if key == "name" and not prefix:
            continue
        if key not in into:
            raise UserError(f"{where}: unknown recipe key {dotted!r}; valid here: {', '.join(sorted(into))}")
        if isinstance(into[key], dict) and isinstance(value, Mapping) and key != "kwargs":
            _merge(into[key], value, where, prefix=f"{dotted}.")
        else:
            into[key] = copy.deepcopy(value)


def parse_value(text: str) -> Any:
    """``--set`` values: a Python/JSON literal (1e-3, true, [1, 2], None, "x"), else the text itself."""
    lowered = {"true": True, "false": False, "null": None, "none": None}
    if text.strip().lower() in lowered:
        return lowered[text.strip().lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def set_key(recipe: dict, dotted: str, value: Any) -> None:
    """Set ``recipe[a][b][c] = value`` for ``dotted = "a.b.c"``; the key must exist (except in kwargs)."""
    parts = dotted.split(".")
    node = recipe
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"--set {dotted}: the recipe has no key {'.'.join(parts[: i + 1])!r}")
        if node[part] is None:
            head = ".".join(parts[: i + 1])
            raise UserError(f"--set {dotted}: {head} is None in this recipe; set it whole, e.g. --set {head}={{...}}")
        node = node[part]
    last = parts[-1]
    if not isinstance(node, dict) or (last not in node and parts[-2:-1] != ["kwargs"]):
        valid = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
        raise UserError(f"--set {dotted}: unknown key {last!r} (valid: {valid})")
    node[last] = value


def resolve(
    recipe: str | Path | Mapping,
    overrides: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> dict:
    """The recipe with ``--set`` overrides, then named-flag overrides (``None`` = not given) applied.

    ``recipe`` is a registered name, a path to a JSON recipe, or a recipe dict (copied).
    ``overrides`` maps the flag names of :data:`FLAG_KEYS` (plus ``unscale_lr``) to values.
    The result is validated (:func:`kit.config.checks.check_recipe`): a bad value raises a one-line UserError.
    """
    from kit.config import checks  # (imports jsonschema: only where a recipe is resolved, not where one is read)

    if isinstance(recipe, Mapping):
        cfg = copy.deepcopy(dict(recipe))
        cfg.setdefault("run", {})
        for key, value in RUN_DEFAULTS.items():
            cfg["run"].setdefault(key, value)
        cfg.setdefault("name", "custom")
    elif str(recipe).endswith(".json") or Path(str(recipe)).is_file():
        cfg = load_recipe(recipe)
    else:
        cfg = get_recipe(str(recipe))
    origins: dict[str, str] = {}  # dotted key -> the flag that set it, for the message of a bad value
    for item in sets:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE (e.g. optimizer.weight_decay=0.1), not {item!r}")
        key, text = item.split("=", 1)
        set_key(cfg, key.strip(), parse_value(text))
        origins[key.strip()] = "--set"
    overrides = dict(overrides or {})
    if overrides.pop("unscale_lr", False):
        cfg["optimizer"]["lr_base_batch"] = None
        origins["optimizer.lr_base_batch"] = "--unscale-lr"
    for flag, value in overrides.items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise UserError(f"unknown override {flag!r}; known: {', '.join(sorted(FLAG_KEYS))}")
        set_key(cfg, FLAG_KEYS[flag], value)
        origins[FLAG_KEYS[flag]] = flag_spelling(flag)
    if cfg["run"].get("out") is None:
        cfg["run"]["out"] = str(Path("runs") / cfg["name"])
    checks.check_recipe(cfg, origins)
    return cfg


def scaled_lr(cfg: Mapping, world_size: int) -> tuple[float, str]:
    """The learning rate for this run and a sentence saying how it was reached (for train.log)."""
    opt = cfg["optimizer"]
    base_lr, base_batch = float(opt["lr"]), opt.get("lr_base_batch")
    global_batch = int(cfg["batch_size"]) * world_size
    if not base_batch:
        return base_lr, f"lr {base_lr:g} as given (not scaled by the batch size)"
    lr = base_lr * global_batch / float(base_batch)
    return lr, (
        f"lr {lr:.6g} = {base_lr:g} x global batch {global_batch} ({cfg['batch_size']} x {world_size} "
        f"process{'es' if world_size > 1 else ''}) / {base_batch} (linear scaling, as DeiT)"
    )


def describe(name: str) -> str:
    return RECIPES[name]["description"]
