"""What a user may set, declared once as JSON Schema: the recipe's keys and the workshop notebooks' parameters.

Why JSON Schema (the ``jsonschema`` package): the rules are data, like the recipes they describe.
:data:`RECIPE_SCHEMA` is a plain dict that prints as JSON
(``python -c "import json, kit.config.schema as s; print(json.dumps(s.RECIPE_SCHEMA, indent=1))"``); each
property's ``description`` is the sentence a user reads when the value breaks it; the recipes stay plain
dicts (tuples are accepted where JSON has arrays, and a ``pathlib.Path`` where a path is a string). Types,
ranges, allowed values and required keys are the schema's; :mod:`kit.config.checks` checks a recipe against
it (and adds the rules across keys that a schema cannot say), :mod:`kit.config.problems` turns a broken rule
into one line. This module is data only: it knows no recipe (the notebooks' ``models`` are passed in) and
imports neither jsonschema nor torch.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from kit.device.choices import AMP_CHOICES, DEVICE_SPEC

__all__ = ["import_jsonschema", "integer", "number", "boolean", "text", "choice", "pair", "section",
           "INTERPOLATIONS", "DEVICE", "RECIPE_SCHEMA", "notebook_parameters_schema", "node_at"]


def import_jsonschema():
    """``import jsonschema``, without the IRI checker that makes the import take seconds.

    jsonschema's ``_format`` module imports ``rfc3987_syntax`` when it is installed (the
    ``jsonschema[format-nongpl]`` extra, which nbformat, and so every Jupyter install, pulls in), and that
    module compiles some 35 Lark grammars as it is imported: 1.4-3 s on the workshop's 2-core CPU, paid
    by every process that checks a recipe (each notebook's kernel, each ``kit train``), which made the
    headless workshop ~10 s slower (jsonschema issue #1428). The kit's schemas use no ``format``
    keyword, so the kit imports jsonschema with that one module marked absent, which jsonschema treats
    as not installed: it then does not check the ``iri`` formats, as without the extra. Where
    jsonschema or rfc3987_syntax is already imported, this is a plain import.
    """
    import sys

    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        import jsonschema
    else:
        sys.modules["rfc3987_syntax"] = None  # importing it now raises ImportError, which jsonschema suppresses
        try:
            import jsonschema
        finally:
            del sys.modules["rfc3987_syntax"]
    return jsonschema


# ---------------------------------------------------------------------------------------------
# Building blocks (each returns plain data; ``description`` is what the user reads)
# ---------------------------------------------------------------------------------------------


def _kinds(kind: Any, null: bool) -> Any:
    kinds = list(kind) if isinstance(kind, (list, tuple)) else [kind]
    return kinds + ["null"] if null else (kinds if len(kinds) > 1 else kinds[0])


def _or_none(text: str, none: Optional[str]) -> str:
    return f"{text}, or None ({none})" if none else text


def integer(minimum: int, none: Optional[str] = None) -> dict:
    """An integer >= ``minimum``; ``none``: what None means, when None is allowed."""
    return {
        "type": _kinds("integer", none is not None),
        "minimum": minimum,
        "description": "must be " + _or_none(f"an integer >= {minimum}", none),
    }


def number(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
           high_open: bool = False, none: Optional[str] = None) -> dict:
    """A finite number in the range given (``*_open``: the bound itself is excluded)."""
    schema: dict = {"type": _kinds("number", none is not None)}
    if low is not None:
        schema["exclusiveMinimum" if low_open else "minimum"] = low
    if high is not None:
        schema["exclusiveMaximum" if high_open else "maximum"] = high
    if low is not None and high is not None:
        text = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        text = f"a number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        text = f"a number {'<' if high_open else '<='} {high:g}"
    else:
        text = "a number"
    schema["description"] = "must be " + _or_none(text, none)
    return schema


def boolean() -> dict:
    return {"type": "boolean", "description": "must be True or False"}


def text(none: Optional[str] = None, path: bool = False) -> dict:
    """A non-empty string; ``path``: a path (a ``pathlib.Path`` counts as a string: see :data:`Validator`)."""
    if path:
        return {"type": _kinds("string", none is not None), "description": "must be " + _or_none("a path", none)}
    return {
        "type": _kinds("string", none is not None),
        "minLength": 1,
        "description": "must be " + _or_none("a non-empty string", none),
    }


def choice(values: Iterable[Any], note: str = "") -> dict:
    values = list(values)
    shown = ", ".join("None" if v is None else str(v) for v in values)
    return {"enum": values, "description": f"must be one of {shown}{note}"}


def pair(low: float, high: Optional[float], description: str) -> dict:
    """``(min, max)``: two numbers in the range (their order is a cross-check)."""
    items: dict = {"type": "number", "exclusiveMinimum": low}
    if high is not None:
        items["maximum"] = high
    return {"type": "array", "items": items, "minItems": 2, "maxItems": 2, "description": description}


def section(properties: dict, required: Iterable[str] = (), none: Optional[str] = None, open: bool = False,
            description: str = "") -> dict:
    """A dict of known keys (``open``: other keys pass through, e.g. to timm)."""
    schema = {
        "type": _kinds("object", none is not None),
        "properties": properties,
        "required": list(required),
        "additionalProperties": open,
        "description": description or ("must be " + _or_none("a dict", none)),
    }
    return schema


INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "box", "hamming", "lanczos")
#: What ``kit.device.shim.resolve`` accepts (:data:`kit.device.choices.DEVICE_SPEC`, case and surrounding blanks
#: ignored).
DEVICE = {
    "type": "string",
    "pattern": r"^\s*(?i:" + DEVICE_SPEC.pattern[1:-1] + r")\s*$",
    "description": "must be auto, cpu, mps, cuda, cuda:N, sdaa or sdaa:N",
}

# ---------------------------------------------------------------------------------------------
# The recipe
# ---------------------------------------------------------------------------------------------

RECIPE_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "vitkit training recipe (resolved: after --set and the flags)",
    **section(
        {
            "name": text(),
            "description": {"type": "string", "description": "must be a string"},
            "source": {"type": "string", "description": "must be a string"},
            "model": section(
                {
                    "name": text(),
                    "num_classes": integer(2, none="the number of classes in the data"),
                    "drop_path_rate": number(0, 1, high_open=True, none="off"),
                    "kwargs": {"type": ["object", "null"], "description": "must be a dict of timm model arguments"},
                },
                required=["name"],
            ),
            "data": section(
                {
                    "path": text(path=True),
                    "prepare": {"type": "string", "description": "must be a string"},
                    "format": choice(("auto", "annotations", "imagefolder")),
                    "img_size": integer(1),
                    "num_workers": integer(0),
                    "cache_images": boolean(),
                    "mean": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3,
                             "description": "must be 3 numbers, one per RGB channel"},
                    "std": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 3,
                            "maxItems": 3, "description": "must be 3 numbers > 0, one per RGB channel"},
                    # Passed to timm's create_transform as keyword arguments: other keys go through to it.
                    "train": section(
                        {
                            "scale": pair(0, 1, "must be (min, max) with 0 < min <= max <= 1"),
                            "ratio": pair(0, None, "must be (min, max) with 0 < min <= max"),
                            "hflip": number(0, 1),
                            "vflip": number(0, 1),
                            "auto_augment": text(none="off"),
                            "color_jitter": {
                                "anyOf": [
                                    {"type": ["number", "null"], "minimum": 0},
                                    {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 3,
                                     "maxItems": 4},
                                ],
                                "description": "must be a number >= 0, 3 or 4 of them, or None (off)",
                            },
                            "interpolation": choice(INTERPOLATIONS + ("random",)),
                            "re_prob": number(0, 1),
                            "re_mode": choice(("const", "rand", "pixel")),
                            "re_count": integer(1),
                        },
                        open=True,
                    ),
                    "eval": section(
                        {"crop_pct": number(0, 1, low_open=True), "interpolation": choice(INTERPOLATIONS)}
                    ),
                    "repeated_aug": integer(1, none="1"),
                    "shuffle": boolean(),
                },
                required=["path", "img_size"],
            ),
            "batch_size": integer(1),
            "eval_batch_size": integer(1, none="same as batch_size"),
            "epochs": integer(1),
            "optimizer": section(
                {
                    "opt": text(),
                    "lr": number(0, low_open=True),
                    "lr_base_batch": integer(1, none="the lr is not scaled by the batch"),
                    "weight_decay": number(0, none="0"),
                    "betas": {"type": ["array", "null"], "items": {"type": "number", "minimum": 0,
                                                                   "exclusiveMaximum": 1},
                              "minItems": 2, "maxItems": 2,
                              "description": "must be two numbers in [0, 1), or None (the optimizer's default)"},
                    "eps": number(0, low_open=True, none="the optimizer's default"),
                    "momentum": number(0, 1, high_open=True, none="the optimizer's default"),
                    "fused": choice((True, False, "auto")),
                },
                required=["opt", "lr"],
            ),
            "schedule": section(
                {
                    "sched": choice(("cosine",), note=" (the only schedule wired in the kit)"),
                    "warmup_epochs": number(0, none="0"),
                    "warmup_lr": number(0, none="0"),
                    "warmup_factor": number(0, 1, low_open=True, none="use warmup_lr"),
                    "warmup_prefix": boolean(),
                    "min_lr": number(0, none="0"),
                    "cooldown_epochs": number(0, none="0"),
                    "step_on_epochs": boolean(),
                }
            ),
            "mixup": section(
                {
                    "mixup_alpha": number(0),
                    "cutmix_alpha": number(0),
                    "cutmix_minmax": {**pair(0, 1, "must be (min, max) with 0 < min <= max <= 1, or None"),
                                      "type": ["array", "null"]},
                    "prob": number(0, 1),
                    "switch_prob": number(0, 1),
                    "mode": choice(("batch", "pair", "elem")),
                    "correct_lam": boolean(),
                },
                none="off",
                description="must be None (off) or a dict of timm Mixup arguments (mixup_alpha, cutmix_alpha, "
                "cutmix_minmax, prob, switch_prob, mode, correct_lam)",
            ),
            "label_smoothing": number(0, 1, high_open=True, none="0"),
            "grad_clip": number(0, none="no clipping; 0 is off too"),
            "ema": section(
                {"enabled": boolean(), "decay": number(0, 1, low_open=True, high_open=True), "validate": boolean()},
                none="off",
            )
            | {"if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
               "then": {"required": ["decay"]}},
            "amp": choice(AMP_CHOICES + (True, False, None), note=" (True = auto, False and None = none)"),
            "eval_every": integer(0, none="no validation; 0 too"),
            "seed": integer(0),
            "compile": boolean(),
            "numerics": section(
                {"init_perturbation": number(0), "grad_noise": number(0), "seed": integer(0)}, none="off"
            ),
            "run": section(
                {
                    "out": text(path=True),
                    "device": DEVICE,
                    "max_steps": integer(1, none="no limit"),
                    "max_epochs": integer(1, none="no limit"),
                    "save_every": integer(0),
                    "resume": {"type": ["boolean", "string"],
                               "description": "must be True, False or a checkpoint / run folder path"},
                    "overwrite": boolean(),
                    "progress": boolean(),
                    "skip_corrupt": boolean(),
                },
                required=["out", "device", "max_steps", "max_epochs", "save_every", "resume", "overwrite",
                          "progress", "skip_corrupt"],
            ),
        },
        required=["name", "model", "data", "batch_size", "epochs", "optimizer", "schedule", "seed", "run"],
    ),
}

# ---------------------------------------------------------------------------------------------
# The workshop notebooks' parameters (the names their ``parameters`` cells declare)
# ---------------------------------------------------------------------------------------------


def notebook_parameters_schema(models: Iterable[str]) -> dict:
    """The schema of the workshop notebooks' parameters; ``models``: what their ``models`` may hold (the models of
    the workshop recipes, :func:`kit.config.registry.workshop_models`)."""
    names = list(models)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vitkit workshop notebook parameters",
        **section(
            {
                "device": DEVICE,
                "models": {
                    "type": "array",
                    "items": {"enum": names},
                    "minItems": 1,
                    "uniqueItems": True,
                    "description": f"must be a list of workshop models, from {', '.join(names)}",
                },
                "epochs": integer(1, none="the recipe's own"),
                "data_dir": text(path=True),
                "out_dir": text(path=True),
                "quick": {"type": ["boolean", "null"],
                          "description": "must be True, False or None (None: read $KIT_QUICK); with papermill -p, "
                          "write True or False capitalised"},
                "interactive": boolean(),
                "amp": {"type": ["null", "boolean", "string"], "pattern": "^(?i:none|auto|fp16|bf16|true|false)$",
                        "description": "must be None (the recipe's), True, False, or one of none, auto, fp16, bf16"},
                "imagenet_archives": text(none="skip the ImageNet build", path=True),
                "imagenet_out": text(none="skip the ImageNet build", path=True),
            },
            open=True,  # a notebook may declare parameters of its own
        ),
    }


def node_at(schema: Mapping, path: list) -> Optional[Mapping]:
    """The schema of the key at ``path`` (through ``properties`` only), or None."""
    node: Optional[Mapping] = schema
    for part in path:
        node = (node or {}).get("properties", {}).get(part)
    return node
