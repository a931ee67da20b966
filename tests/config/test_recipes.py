"""kit.config's recipes: the registry as data, their resolution from overrides, and the config package's imports."""

from __future__ import annotations

import subprocess
import sys

from kit.config import recipes, registry, schema


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
