"""kit.config.flags: each named flag of ``kit train`` declared once, and what is made from the declaration."""

from __future__ import annotations

import argparse

import pytest

from kit.config import flags, recipes, schema
from kit.core.errors import UserError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    flags.add_flags(p)
    return p


@pytest.mark.parametrize("name", recipes.list_recipes())
def test_every_flag_sets_a_key_every_recipe_has_and_the_schema_declares(name):
    recipe = recipes.get_recipe(name)
    for flag in flags.FLAGS:
        node = recipe
        for part in flag.key.split("."):
            assert part in node, (flag.name, flag.key)
            node = node[part]
        assert schema.node_at(schema.RECIPE_SCHEMA, flag.key.split(".")) is not None, flag.key


def test_a_flags_type_is_its_keys_type_in_the_schema():
    args = parser().parse_args(["--epochs", "3", "--lr", "1e-3", "--workers", "2", "--seed", "7", "--data", "d"])
    assert (args.epochs, args.lr, args.workers, args.seed, args.data) == (3, 1e-3, 2, 7, "d")
    assert type(args.epochs) is int and type(args.lr) is float
    with pytest.raises(argparse.ArgumentError):
        parser().parse_args(["--epochs", "1.5"])  # an integer key takes no fraction
    assert {f.name: f.type() for f in flags.FLAGS if f.type()} == {
        "epochs": int, "batch_size": int, "lr": float, "seed": int, "max_steps": int, "max_epochs": int,
        "save_every": int, "workers": int,
    }


def test_the_flag_table_and_the_message_spelling_come_from_the_declaration():
    assert flags.FLAG_KEYS["batch_size"] == "batch_size" and flags.FLAG_KEYS["workers"] == "data.num_workers"
    assert "unscale_lr" not in flags.FLAG_KEYS  # a switch, applied by resolve() itself
    assert flags.flag_spelling("progress") == "--no-progress" and flags.flag_spelling("max_steps") == "--max-steps"
    with pytest.raises(UserError, match=r"data.num_workers = -1 \(from --workers\)"):
        recipes.resolve("workshop_hivit", {"workers": -1})
    cfg = recipes.resolve("workshop_hivit", {"unscale_lr": True, "lr": 0.5})
    assert cfg["optimizer"]["lr_base_batch"] is None and recipes.scaled_lr(cfg, 4)[0] == 0.5


def test_the_recipe_check_knows_model_names_as_kit_models_create_does():
    from kit import models

    assert models.timm_name("cait_S24_224") == "cait_s24_224"  # DeiT's name
    cfg = recipes.resolve("cait_s24_in1k", sets=["model.name=cait_S24_224"])  # the check takes it too
    assert cfg["model"]["name"] == "cait_S24_224"
    with pytest.raises(UserError, match="unknown model 'no_such_model'"):
        models.create("no_such_model")
    with pytest.raises(UserError, match=r"model.name = 'no_such_model' \(from --set\): must be a model registered"):
        recipes.resolve("cait_s24_in1k", sets=["model.name=no_such_model"])
