"""The trained workshop checkpoints shipped in kit/assets/workshop_checkpoints (bench/make_workshop_checkpoints.py):
one per workshop model, small, as the manifest says, loading strictly into the registered model, and classifying the
digits as well as the run that made them logged."""

from __future__ import annotations

import hashlib

import pytest
import torch

import kit.workshop as workshop
from kit.config import recipes
from kit.core.errors import UserError
from kit.models import create

WORKSHOP_MODELS = sorted(
    recipes.get_recipe(r)["model"]["name"] for r in recipes.list_recipes() if r.startswith("workshop_")
)


def test_one_small_checkpoint_per_workshop_model_as_the_manifest_says():
    manifest = workshop.workshop_checkpoints()
    assert sorted(manifest["models"]) == WORKSHOP_MODELS
    total = 0
    for name, entry in manifest["models"].items():
        path = workshop.workshop_checkpoint(name)
        data = path.read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert recipes.get_recipe(entry["recipe"])["model"]["name"] == name
        assert entry["command"].startswith(f"python -m kit train --recipe {entry['recipe']} ")
        assert {"seed", "val_acc1", "torch", "timm", "epoch"} <= set(entry)
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # weights only: no code, no optimizer
        assert ckpt["model_name"] == name and ckpt["recipe"] == entry["recipe"] and "optimizer" not in ckpt
        assert ckpt["acc1"] == pytest.approx(entry["val_acc1"])
        total += len(data)
    assert total < 5e6, f"the shipped checkpoints take {total / 1e6:.1f} MB"
    with pytest.raises(UserError, match="no shipped trained checkpoint"):
        workshop.workshop_checkpoint("hivit_tiny_patch16_224")


@pytest.mark.parametrize("name", WORKSHOP_MODELS)
def test_checkpoint_loads_strictly_and_classifies_the_digits(name, digits_dir):
    from kit.data import loaders as data
    from kit.device.shim import resolve
    from kit.train import evaluate

    path = workshop.workshop_checkpoint(name)
    model = create(name, checkpoint=path)  # the kit's door: strict except a head of another size
    state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    assert not model.load_state_dict(state, strict=True).missing_keys  # and strictly, head included
    entry = workshop.workshop_checkpoints()["models"][name]
    cfg = recipes.resolve(entry["recipe"], {"data": str(digits_dir)})
    val = data.build_loaders(cfg["data"], batch_size=cfg["batch_size"], eval_batch_size=cfg["eval_batch_size"],
                             seed=cfg["seed"]).val
    dev = resolve("cpu")
    metrics, _ = evaluate(model, val, dev, dev.amp_policy("none"), world=1)
    assert metrics["acc1"] >= 90.0, f"{name}: {metrics['acc1']:.2f} % on the digits' val split"
    assert metrics["acc1"] == pytest.approx(entry["val_acc1"], abs=0.5)  # what the run that made it logged
