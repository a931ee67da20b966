"""What a user may set, declared once as JSON Schema, and checked before anything runs.

A bad value used to surface wherever it was first used: ``--batch-size 0`` as a ``ValueError`` from
torch's DataLoader, ``--lr -1`` from the optimizer, ``--set optimizer.lr=abc`` from a ``float()`` in the
learning-rate rule, and ``--epochs -1`` not at all (a run of "-22 steps" that exited 0). Each was a
traceback, or a silent no-op, after the run folder had been locked and sometimes written.

Now the whole resolved recipe is checked once, by :func:`kit.config.recipes.resolve` (which ``kit train``, the
notebooks and :func:`kit.train.loop.train` all go through), before a folder, a lock, a model or a byte of
data is touched. A wrong value is a :class:`kit.core.errors.UserError`: exit code 2 and one line that names
the key, the value, where it came from when a flag set it, and what is allowed::

    kit train: error: recipe workshop_hivit: batch_size = 0 (from --batch-size): must be an integer >= 1

Why JSON Schema (the ``jsonschema`` package): the rules are data, like the recipes they describe.
:data:`RECIPE_SCHEMA` is a plain dict that prints as JSON
(``python -c "import json, kit.config.schema as s; print(json.dumps(s.RECIPE_SCHEMA, indent=1))"``); each
property's ``description`` is the sentence a user reads when the value breaks it; the recipes stay plain
dicts (tuples are accepted where JSON has arrays, and a ``pathlib.Path`` where a path is a string). Types,
ranges, allowed values and required keys are the schema's. What a schema cannot say is a small explicit
function after it (:data:`CROSS_CHECKS`): the model is registered in timm and builds with the recipe's
``model.kwargs`` (on the meta device: no memory, no weights), the image size is a multiple of the model's
patch size, ``(min, max)`` pairs are in order, the warm-up (plus cool-down) fits in ``epochs`` (equal is
allowed: ``--epochs 1`` with a one-epoch warm-up is a legitimate smoke run), Mixup/CutMix gets an even
batch, the optimizer is one timm has, and timm's ``create_transform`` accepts the augmentation.

The workshop notebooks' parameters (``epochs``, ``models``, ``quick`` ...) are checked the same way
(:data:`NOTEBOOK_PARAMETERS_SCHEMA`, :func:`check_notebook_parameters`): in the first code cell after the
parameters cell, and by ``kit workshop`` before the first notebook runs.

What stays a run-time check, because it needs the data or the device: the data folder and its layout,
the number of classes in the data, whether the device is present, the fused optimizer kernel.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from kit.core.errors import UserError
from kit.device.choices import AMP_CHOICES, DEVICE_SPEC


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


jsonschema = import_jsonschema()

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


def workshop_models() -> list[str]:
    """The models of the workshop recipes (what the notebooks' ``models`` may hold)."""
    from kit.config.recipes import RECIPES

    return [r["model"]["name"] for name, r in RECIPES.items() if name.startswith("workshop_")]


def notebook_parameters_schema() -> dict:
    """:data:`NOTEBOOK_PARAMETERS_SCHEMA`, built from the workshop recipes (the ``models`` allowed)."""
    names = workshop_models()
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


# ---------------------------------------------------------------------------------------------
# The validator: JSON Schema 2020-12, with Python's own containers
# ---------------------------------------------------------------------------------------------


def _is_array(checker, value) -> bool:
    return isinstance(value, (list, tuple))


def _is_number(checker, value) -> bool:  # numpy scalars too; never a bool, never NaN or infinity
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(checker, value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_string(checker, value) -> bool:  # a path given as a pathlib.Path too (the schema puts no length on paths)
    return isinstance(value, (str, os.PathLike))


_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"array": _is_array, "number": _is_number, "integer": _is_integer, "string": _is_string}
)


def _min_length(validator, length, instance, schema):  # (on the text of a Path, not len(Path))
    if validator.is_type(instance, "string") and len(os.fspath(instance)) < length:
        yield jsonschema.ValidationError(f"{instance!r} is shorter than {length}")


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not re.search(pattern, os.fspath(instance)):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


#: JSON Schema 2020-12 over Python values: a tuple is an array, a ``pathlib.Path`` a string, a numpy scalar a
#: number; NaN and infinity are not numbers (so ``--lr nan`` is refused like ``--lr -1``), nor is a bool.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"minLength": _min_length, "pattern": _pattern}, type_checker=_TYPES
)

# ---------------------------------------------------------------------------------------------
# One problem, one line
# ---------------------------------------------------------------------------------------------

_MISSING = object()


def show(value: Any, limit: int = 80) -> str:
    """A value as the user would type it back (Python's repr), cut to ``limit`` characters."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Problem:
    """What is wrong: ``key`` (dotted) holds ``value``, and ``allowed`` says what it must be."""

    key: str
    value: Any
    allowed: str
    related: tuple = ()  # other keys the rule reads: their origin is worth naming too

    def line(self, origins: Optional[Mapping[str, str]] = None) -> str:
        """``KEY = VALUE (from FLAG): what is allowed`` (``KEY is missing: ...`` for a missing key)."""
        origin = origin_of(self.key, origins)
        where = f" (from {origin})" if origin else ""
        related = [f"{key} from {origin_of(key, origins)}" for key in self.related if origin_of(key, origins)]
        also = f" ({'; '.join(related)})" if related and not origin else ""
        if self.value is _MISSING:
            return f"{self.key} is missing{where}: {self.allowed}{also}"
        return f"{self.key} = {show(self.value)}{where}: {self.allowed}{also}"


def origin_of(key: str, origins: Optional[Mapping[str, str]]) -> Optional[str]:
    """The flag that set ``key`` or a section holding it (``origins``: dotted key -> flag), if any."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        found = (origins or {}).get(".".join(parts[:n]))
        if found:
            return found
    return None


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(the whole)"


def _problem(error: jsonschema.ValidationError, schema: Mapping, instance: Any) -> Problem:
    """jsonschema's error as a :class:`Problem` at the key whose ``description`` says what is allowed."""
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        node = node_at(schema, path + [missing])
        return Problem(_dotted(path + [missing]), _MISSING, (node or {}).get("description", "must be given"))
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = next(k for k in error.instance if k not in known)
        where = f"{_dotted(path)} takes" if path else "a recipe takes"
        return Problem(_dotted(path + [extra]), error.instance[extra], f"unknown key; {where} {', '.join(known)}")
    # the deepest named key on the path: its whole value, and its sentence
    node, depth, value = schema, 0, instance
    for part in path:
        props = node.get("properties", {})
        if not isinstance(part, str) or part not in props:
            break
        node, depth, value = props[part], depth + 1, value[part]
    allowed = node.get("description", error.message)
    if depth < len(path):  # one element of it (an item of a list) broke the rule
        allowed += f"; {show(error.instance)} is not " + ("one of them" if error.validator == "enum" else "allowed")
    return Problem(_dotted(path[:depth]), value, allowed)


def node_at(schema: Mapping, path: list) -> Optional[Mapping]:
    """The schema of the key at ``path`` (through ``properties`` only), or None."""
    node: Optional[Mapping] = schema
    for part in path:
        node = (node or {}).get("properties", {}).get(part)
    return node


def schema_problems(schema: Mapping, instance: Any, origins: Optional[Mapping[str, str]] = None) -> list[Problem]:
    """Every place ``instance`` breaks ``schema``, as problems; those a flag caused first, then in schema order."""
    problems = [_problem(error, schema, instance) for error in Validator(schema).iter_errors(instance)]
    return sorted(problems, key=lambda p: origin_of(p.key, origins) is None)


# ---------------------------------------------------------------------------------------------
# What the schema cannot say: the recipe's cross-checks
# ---------------------------------------------------------------------------------------------


def _ordered_pairs(cfg: Mapping) -> Optional[Problem]:
    train = cfg["data"].get("train") or {}
    mixup = cfg.get("mixup") or {}
    for key, value in (
        ("data.train.scale", train.get("scale")),
        ("data.train.ratio", train.get("ratio")),
        ("mixup.cutmix_minmax", mixup.get("cutmix_minmax")),
    ):
        if value is not None and value[0] > value[1]:
            return Problem(key, value, node_at(RECIPE_SCHEMA, key.split("."))["description"])
    return None


def _warmup_fits(cfg: Mapping) -> Optional[Problem]:
    sched, epochs = cfg["schedule"], cfg["epochs"]
    warmup, cooldown = sched.get("warmup_epochs") or 0, sched.get("cooldown_epochs") or 0
    if warmup + cooldown <= epochs:
        return None
    if cooldown:
        return Problem("schedule.warmup_epochs", warmup, f"the warm-up and the cool-down (schedule.cooldown_epochs = "
                       f"{cooldown:g}) must fit in the run: epochs = {epochs}", related=("epochs",))
    return Problem("schedule.warmup_epochs", warmup, f"the warm-up must fit in the run: at most epochs = {epochs}",
                   related=("epochs",))


def mixup_enabled(cfg: Mapping) -> bool:
    """Whether the recipe mixes images (Mixup or CutMix): the trainer builds timm's Mixup exactly then."""
    mix = cfg.get("mixup") or {}
    return bool(mix) and bool(mix.get("mixup_alpha", 0) > 0 or mix.get("cutmix_alpha", 0) > 0
                              or mix.get("cutmix_minmax"))


def _even_batch_for_mixup(cfg: Mapping) -> Optional[Problem]:
    if mixup_enabled(cfg) and int(cfg["batch_size"]) % 2:
        return Problem("batch_size", cfg["batch_size"], "must be even: Mixup/CutMix mixes pairs within a batch "
                       "(or --set mixup=None)", related=("mixup",))
    return None


def _optimizer_known(cfg: Mapping) -> Optional[Problem]:
    name = str(cfg["optimizer"]["opt"]).lower()
    known = timm_optimizers()
    if known and name not in known and name.split("_")[-1] not in known:  # timm also reads "lookahead_adamw"
        return Problem("optimizer.opt", cfg["optimizer"]["opt"], f"must be an optimizer timm has, e.g. adamw, sgd, "
                       f"lamb, lion (timm.optim.list_optimizers() lists all {len(known)})")
    return None


@functools.lru_cache(maxsize=None)
def timm_optimizers() -> tuple:
    """timm's optimizer names (empty on a timm too old to list them: then the optimizer itself refuses)."""
    try:
        from timm.optim import list_optimizers
    except ImportError:
        return ()
    return tuple(list_optimizers())


def _model_fits(cfg: Mapping) -> Optional[Problem]:
    """The model is registered, builds with the recipe's kwargs at its image size, and the size fits the patch."""
    from kit import models

    name, img_size = cfg["model"]["name"], int(cfg["data"]["img_size"])
    kwargs = dict(cfg["model"].get("kwargs") or {})
    try:
        patch, built_as = model_patch_size(name, img_size, json.dumps(kwargs, sort_keys=True, default=repr))
    except UnknownModel:
        return Problem("model.name", name, "must be a model registered in timm (timm.list_models()); the kit's: "
                       + ", ".join(models.list_kit_models()))
    except CannotBuild as e:
        key, value = ("model.kwargs", kwargs) if kwargs else ("data.img_size", img_size)
        return Problem(key, value, f"timm cannot build {name} with it ({e})", related=("model.name",))
    if patch and img_size % patch:
        return Problem("data.img_size", img_size, f"must be a multiple of {built_as}'s patch size {patch}",
                       related=("model.name", "model.kwargs"))
    return None


class UnknownModel(Exception):
    """timm has no model of that name (nor is it a DeiT CaiT name)."""


class CannotBuild(Exception):
    """timm refused to build the model with the recipe's arguments (the message says why)."""


@functools.lru_cache(maxsize=64)
def model_patch_size(name: str, img_size: int, kwargs_json: str) -> tuple[int, str]:
    """(the pixels one token covers, timm's name) of ``name`` built on the meta device as the trainer builds it.

    0 when the model has no patch embedding (a convnet). HiViT's tokens are ``inner_patches`` x its stem's patch.
    """
    import timm
    import torch

    from kit import models

    try:
        name = models.timm_name(name)  # (the name kit.models.create builds)
    except UserError:
        raise UnknownModel(name) from None
    kwargs = json.loads(kwargs_json)
    try:
        with torch.device("meta"):
            model = timm.create_model(name, img_size=img_size, **kwargs)
    except Exception as e:  # noqa: BLE001 - a model refuses arguments in many ways
        raise CannotBuild(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    embed = getattr(model, "patch_embed", None)
    patch = getattr(embed, "patch_size", None)
    if patch is None or getattr(embed, "dynamic_img_pad", False):
        return 0, name
    patch = patch[0] if isinstance(patch, (tuple, list)) else patch
    return int(patch) * int(getattr(model, "inner_patches", 1) or 1), name


def _transforms_build(cfg: Mapping) -> Optional[Problem]:
    """timm's create_transform takes the augmentation settings (no image is read)."""
    from kit.data.transforms import build_transform

    data = cfg["data"]
    try:
        build_transform(data, True)
    except Exception as e:  # noqa: BLE001 - timm refuses settings in many ways
        reason = f"timm's create_transform refuses it ({type(e).__name__}: {_first_line(e)})"
        train = dict(data.get("train") or {})
        if train.get("auto_augment"):
            try:
                build_transform({**data, "train": {**train, "auto_augment": None}}, True)
            except Exception:  # noqa: BLE001
                pass
            else:
                return Problem("data.train.auto_augment", train["auto_augment"], "must be a timm augmentation "
                               "policy, e.g. rand-m9-mstd0.5-inc1, augmix-m5-w4-d2, trivialaugment, original; "
                               + reason)
        return Problem("data.train", train, reason)
    try:
        build_transform(data, False)
    except Exception as e:  # noqa: BLE001
        return Problem("data.eval", data.get("eval"), f"timm's create_transform refuses it ({type(e).__name__}: "
                       f"{_first_line(e)})")
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


#: Rules across keys, in the order they are checked (after the schema, so every value has its type).
CROSS_CHECKS: tuple[Callable[[Mapping], Optional[Problem]], ...] = (
    _ordered_pairs,
    _warmup_fits,
    _even_batch_for_mixup,
    _optimizer_known,
    _model_fits,
    _transforms_build,
)


# ---------------------------------------------------------------------------------------------
# The checks the kit calls
# ---------------------------------------------------------------------------------------------


def recipe_problem(cfg: Mapping, origins: Optional[Mapping[str, str]] = None) -> Optional[Problem]:
    """The first thing wrong with the resolved recipe ``cfg`` (None: nothing)."""
    problems = schema_problems(RECIPE_SCHEMA, cfg, origins)
    if problems:
        return problems[0]
    for check in CROSS_CHECKS:
        problem = check(cfg)
        if problem is not None:
            return problem
    return None


def check_recipe(cfg: Mapping, origins: Optional[Mapping[str, str]] = None) -> None:
    """Raise a one-line :class:`UserError` naming the first bad value of ``cfg`` (see the module doc).

    ``origins`` maps dotted keys to the flag that set them (``{"batch_size": "--batch-size"}``), which the
    message then names.
    """
    problem = recipe_problem(cfg, origins)
    if problem is not None:
        name = cfg.get("name", "custom") if isinstance(cfg, Mapping) else "custom"
        raise UserError(f"recipe {name}: {problem.line(origins)}")


def check_notebook_parameters(values: Mapping[str, Any], origins: Optional[Mapping[str, str]] = None) -> None:
    """Raise a one-line :class:`UserError` naming the first bad value among a notebook's parameters.

    Only the names :func:`notebook_parameters_schema` knows are checked; others pass.
    """
    schema = notebook_parameters_schema()
    known = {k: v for k, v in values.items() if k in schema["properties"]}
    problems = schema_problems(schema, known, origins)
    if problems:
        raise UserError(problems[0].line(origins))
