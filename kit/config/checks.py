"""A recipe checked before anything runs: the schema, then the rules across keys a schema cannot say.

A bad value used to surface wherever it was first used: ``--batch-size 0`` as a ``ValueError`` from
torch's DataLoader, ``--lr -1`` from the optimizer, ``--set optimizer.lr=abc`` from a ``float()`` in the
learning-rate rule, and ``--epochs -1`` not at all (a run of "-22 steps" that exited 0). Each was a
traceback, or a silent no-op, after the run folder had been locked and sometimes written.

Now the whole resolved recipe is checked once, by :func:`kit.config.recipes.resolve` (which ``kit train``, the
notebooks and :func:`kit.train.loop.train` all go through), before a folder, a lock, a model or a byte of
data is touched. A wrong value is a :class:`kit.core.errors.UserError`: exit code 2 and one line that names
the key, the value, where it came from when a flag set it, and what is allowed::

    kit train: error: recipe workshop_hivit: batch_size = 0 (from --batch-size): must be an integer >= 1

Types, ranges, allowed values and required keys are :data:`kit.config.schema.RECIPE_SCHEMA`'s. What a schema
cannot say is a small explicit function after it (:data:`CROSS_CHECKS`): the model is registered in timm and
builds with the recipe's ``model.kwargs`` (on the meta device: no memory, no weights), the image size is a
multiple of the model's patch size, ``(min, max)`` pairs are in order, the warm-up (plus cool-down) fits in
``epochs`` (equal is allowed: ``--epochs 1`` with a one-epoch warm-up is a legitimate smoke run),
Mixup/CutMix gets an even batch, the optimizer is one timm has, and timm's ``create_transform`` accepts the
augmentation. Each rule is checked here only: the trainer builds what passed.

The workshop notebooks' parameters (``epochs``, ``models``, ``quick`` ...) are checked the same way
(:func:`check_notebook_parameters`): in the first code cell after the parameters cell, and by
``kit workshop`` before the first notebook runs.

What stays a run-time check, because it needs the data or the device: the data folder and its layout,
the number of classes in the data, whether the device is present, the fused optimizer kernel.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Mapping, Optional

from kit.config.problems import Problem, schema_problems
from kit.config.registry import workshop_models
from kit.config.schema import RECIPE_SCHEMA, node_at, notebook_parameters_schema
from kit.core.errors import UserError

__all__ = ["mixup_enabled", "timm_optimizers", "UnknownModel", "CannotBuild", "model_patch_size", "CROSS_CHECKS",
           "recipe_problem", "check_recipe", "check_notebook_parameters"]


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

    Only the names :func:`kit.config.schema.notebook_parameters_schema` knows are checked; others pass.
    """
    schema = notebook_parameters_schema(workshop_models())
    known = {k: v for k, v in values.items() if k in schema["properties"]}
    problems = schema_problems(schema, known, origins)
    if problems:
        raise UserError(problems[0].line(origins))
