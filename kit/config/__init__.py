"""Recipes as data, their resolution from overrides, and the schema every recipe is checked against.

    checks.py       A recipe checked before anything runs: the schema, then the rules across keys a schema cannot say
    flags.py        The named flags of ``kit train`` (``--epochs``, ``--lr`` ...), declared once
    problems.py     One broken rule, one line: a recipe or a notebook's parameters checked against a schema
    recipes.py      Training recipes: the registered ones (:mod:`kit.config.registry`) by name
    registry.py     The registered training recipes, as data: one plain dict per recipe
    schema.py       What a user may set, declared once as JSON Schema
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # checks
    "mixup_enabled": "checks",
    "timm_optimizers": "checks",
    "UnknownModel": "checks",
    "CannotBuild": "checks",
    "model_patch_size": "checks",
    "CROSS_CHECKS": "checks",
    "recipe_problem": "checks",
    "check_recipe": "checks",
    "check_notebook_parameters": "checks",
    # flags
    "Flag": "flags",
    "FLAGS": "flags",
    "UNSCALE_LR": "flags",
    "FLAG_KEYS": "flags",
    "FLAG_SPELLING": "flags",
    "flag_spelling": "flags",
    "add_flags": "flags",
    # problems
    "Validator": "problems",
    "MISSING": "problems",
    "show": "problems",
    "Problem": "problems",
    "origin_of": "problems",
    "schema_problems": "problems",
    # recipes
    "RUN_DEFAULTS": "recipes",
    "NUMERICS_OFF": "recipes",
    "RECIPES": "recipes",
    "list_recipes": "recipes",
    "get_recipe": "recipes",
    "load_recipe": "recipes",
    "parse_value": "recipes",
    "set_key": "recipes",
    "resolve": "recipes",
    "scaled_lr": "recipes",
    "describe": "recipes",
    # registry
    "IMAGENET_DEFAULT_MEAN": "registry",
    "IMAGENET_DEFAULT_STD": "registry",
    "workshop_models": "registry",
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
    "notebook_parameters_schema": "schema",
    "node_at": "schema",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
