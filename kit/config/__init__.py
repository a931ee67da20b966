"""Recipes as data, their resolution from overrides, and the schema every recipe is checked against.

    recipes.py      Training recipes as data: one plain dict per recipe, resolved against command-line overrides
    schema.py       What a user may set, declared once as JSON Schema, and checked before anything runs
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # recipes
    "RUN_DEFAULTS": "recipes",
    "NUMERICS_OFF": "recipes",
    "RECIPES": "recipes",
    "list_recipes": "recipes",
    "get_recipe": "recipes",
    "load_recipe": "recipes",
    "parse_value": "recipes",
    "set_key": "recipes",
    # flags
    "Flag": "flags",
    "FLAGS": "flags",
    "UNSCALE_LR": "flags",
    "FLAG_KEYS": "flags",
    "FLAG_SPELLING": "flags",
    "flag_spelling": "flags",
    "add_flags": "flags",
    "resolve": "recipes",
    "scaled_lr": "recipes",
    "describe": "recipes",
    # schema
    "import_jsonschema": "schema",
    "integer": "schema",
    "number": "schema",
    "boolean": "schema",
    "text": "schema",
    "choice": "schema",
    "pair": "schema",
    "section": "schema",
    "INTERPOLATIONS": "schema",
    "DEVICE": "schema",
    "RECIPE_SCHEMA": "schema",
    "workshop_models": "schema",
    "notebook_parameters_schema": "schema",
    "show": "schema",
    "Problem": "schema",
    "origin_of": "schema",
    "schema_problems": "schema",
    "timm_optimizers": "schema",
    "UnknownModel": "schema",
    "CannotBuild": "schema",
    "model_patch_size": "schema",
    "mixup_enabled": "schema",
    "node_at": "schema",
    "CROSS_CHECKS": "schema",
    "recipe_problem": "schema",
    "check_recipe": "schema",
    "check_notebook_parameters": "schema",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
