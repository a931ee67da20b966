"""kit.config's recipes: the registry as data, their resolution from overrides, and the config package's imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kit.config import recipes, registry, schema
from kit.core.errors import UserError


def test_the_config_package_reads_and_checks_recipes_without_torch_or_timm():
    """The recipes are data: listing, reading and checking one against the schema's types needs no torch."""
    code = (
        "import sys; from kit.config import checks, flags, problems, recipes, registry, schema; "
        "cfg = recipes.get_recipe('workshop_hivit'); cfg['run']['out'] = 'runs/x'; "
        "assert problems.schema_problems(schema.RECIPE_SCHEMA, cfg) == []; "
        "bad = [m for m in ('torch', 'timm', 'torchvision') if m in sys.modules]; assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_copied_imagenet_mean_and_std_are_timms():
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    assert registry.IMAGENET_DEFAULT_MEAN == IMAGENET_DEFAULT_MEAN
    assert registry.IMAGENET_DEFAULT_STD == IMAGENET_DEFAULT_STD
    assert recipes.get_recipe("hivit_base_in1k")["data"]["mean"] == IMAGENET_DEFAULT_MEAN


def test_the_notebook_schema_allows_the_models_it_is_given():
    """The schema knows no recipe: the workshop's models are passed in (the registry's, by the checks)."""
    from kit.config import checks
    from kit.core.errors import UserError

    given = schema.notebook_parameters_schema(["model_a", "model_b"])
    assert given["properties"]["models"]["items"]["enum"] == ["model_a", "model_b"]
    assert registry.workshop_models() == ["hivit_workshop_32", "cait_workshop_32"]
    checks.check_notebook_parameters({"models": ["cait_workshop_32"]})
    try:
        checks.check_notebook_parameters({"models": ["model_a"]})
    except UserError as e:
        assert "hivit_workshop_32, cait_workshop_32" in str(e)
    else:
        raise AssertionError("a model outside the workshop's was accepted")


def test_overrides_resolve_in_order(tmp_path):
    cfg = recipes.resolve(
        "cait_s24_in1k", {"lr": 1e-3, "epochs": 30, "amp": None}, ["optimizer.lr=2e-3", "grad_clip=1.0"]
    )
    assert cfg["optimizer"]["lr"] == 1e-3 and cfg["epochs"] == 30 and cfg["grad_clip"] == 1.0  # flags win over --set
    assert cfg["amp"] == "auto" and cfg["run"]["out"] == str(Path("runs") / "cait_s24_in1k")
    assert recipes.resolve("cait_s24_in1k", {"unscale_lr": True})["optimizer"]["lr_base_batch"] is None
    with pytest.raises(UserError, match="unknown key 'weight_decy'"):
        recipes.resolve("cait_s24_in1k", sets=["optimizer.weight_decy=0.1"])
    with pytest.raises(UserError, match="unknown recipe"):
        recipes.get_recipe("no_such_recipe")
    partial = tmp_path / "mine.json"
    partial.write_text(json.dumps({"base": "workshop_cait", "epochs": 3, "optimizer": {"lr": 5e-4}}))
    mine = recipes.resolve(str(partial))
    assert mine["name"] == "mine" and mine["epochs"] == 3 and mine["optimizer"]["lr"] == 5e-4
    assert mine["optimizer"]["weight_decay"] == recipes.get_recipe("workshop_cait")["optimizer"]["weight_decay"]


def test_a_recipe_got_is_a_copy_the_registry_does_not_share():
    """Changing any value of a recipe got or resolved, nested ones too, leaves the registered recipe as it was."""
    before = json.dumps(registry.RECIPES["hivit_base_in1k"], sort_keys=True)
    got = recipes.get_recipe("hivit_base_in1k")
    got["optimizer"]["lr"] = 99.0
    got["data"]["train"]["scale"] = (0.5, 0.6)
    got["numerics"]["seed"] = 7
    got["model"]["kwargs"]["depth"] = 1
    resolved = recipes.resolve("hivit_base_in1k")
    resolved["schedule"]["warmup_epochs"] = 0
    resolved["mixup"]["mixup_alpha"] = 0.0
    assert json.dumps(registry.RECIPES["hivit_base_in1k"], sort_keys=True) == before
    assert recipes.get_recipe("hivit_base_in1k")["optimizer"]["lr"] == 1e-3
