"""kit.train: the run folder, exact resume after SIGKILL, DDP = single process, the parts each recipe builds,
``kit train``'s flags, and the errors a user sees (how recipes resolve: tests/config/test_recipes.py).

Every run here uses a tiny ViT (timm's vit_tiny_patch16_224 at 16x16 px, one block) on a
64-image synthetic dataset, one CPU thread per process.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from kit.config import recipes
from kit.core.errors import UserError
from kit.train import build_optimizer, build_scheduler, friendly_errors, train
from kit.train.runlog import read_metrics
from tests.helpers import REPO, log_iterations, one_thread, step_losses, subprocess_env, tiny_recipe  # noqa: F401

#: The regex of the ModelZoo's Demo/run_scripts/loss.py (two spaces before train.loss).
MODELZOO_LOSS = re.compile(r"rank : 0  train\.loss : ([\d\.e-]+)")


@pytest.fixture(scope="module")
def images(tmp_path_factory, make_images) -> Path:
    return make_images(tmp_path_factory.mktemp("imgs"))


# -- the run folder ---------------------------------------------------------------------------------


def test_run_folder_holds_what_the_issue_lists(images, tmp_path):
    seen = {"step": [], "eval": []}

    class Recorder:
        def on_step(self, record):
            seen["step"].append(record)

        def on_eval(self, record):
            seen["eval"].append(record)

    out = tmp_path / "run"
    result = train(
        tiny_recipe(images, out, amp="auto", **{"ema.enabled": True, "ema.validate": True}), callbacks=[Recorder()]
    )

    records = read_metrics(out / "metrics.jsonl")
    steps = [r for r in records if "split" not in r]
    evals = [r for r in records if r.get("split") == "val"]
    assert [r["step"] for r in steps] == list(range(16)) and [r["epoch"] for r in steps] == [0] * 8 + [1] * 8
    assert all({"step", "epoch", "loss", "lr", "images_per_s"} <= r.keys() for r in steps)
    assert len(evals) == 2 and all({"acc1", "acc5", "loss"} <= r.keys() for r in evals)
    assert [r["split"] for r in records if "split" in r] == ["val", "val_ema", "val", "val_ema"]
    assert seen["step"] == steps and [r["split"] for r in seen["eval"]] == ["val", "val_ema"] * 2

    # train.log: one TCAPPDLL line per iteration that the ModelZoo's loss.py parses unchanged
    log = (out / "train.log").read_text()
    assert [float(x) for x in MODELZOO_LOSS.findall(log)] == [r["loss"] for r in steps]
    assert log_iterations(out) == list(range(16))
    line = next(ln for ln in log.splitlines() if ln.startswith("TCAPPDLL"))
    assert re.fullmatch(
        r"TCAPPDLL \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} - Epoch: 0 Iteration: 0  rank : 0  "
        r"train\.loss : [\d.e-]+  train\.ips : [\d.e+-]+ imgs/s",
        line,
    )
    assert "linear scaling, as DeiT" in log and "precision: " in log

    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["model"]["name"] == "vit_tiny_patch16_224"
    opt = recipes.get_recipe("workshop_hivit")["optimizer"]
    assert (
        config["derived"]["lr"] == pytest.approx(opt["lr"] * 8 / opt["lr_base_batch"])
        and config["derived"]["world_size"] == 1
    )
    assert {"torch", "timm", "device", "world_size"} <= config["environment"].keys()

    last = torch.load(out / "last.pth", weights_only=True)
    best = torch.load(out / "best.pth", weights_only=True)
    assert last["position"] == {"epoch": 2, "batch": 0, "step": 16} and last["ema"] is not None
    assert best["acc1"] == max(r["acc1"] for r in evals) == result.best_acc1
    assert result.steps == 16 and result.stopped == "completed" and result.val_acc1 == evals[-1]["acc1"]
    assert result.last_loss == steps[-1]["loss"] and not list(out.glob(".*tmp*"))
    # warm-up then cosine: the lr rises over the first epoch, then falls
    lrs = [r["lr"] for r in steps]
    assert lrs[0] < lrs[7] and lrs[8] > lrs[15]


def test_validation_every_kth_epoch_and_always_where_the_run_ends(images, tmp_path):
    """``eval_every`` thins the validations out, but the epoch a run ends on (the schedule's end or a
    ``--max-epochs`` stop) is always validated: its accuracy is the one the run reports."""
    full = train(tiny_recipe(images, tmp_path / "full", epochs=3, eval_every=2, **{"ema.enabled": False}))
    stopped = train(
        tiny_recipe(images, tmp_path / "stopped", epochs=4, eval_every=3, **{"ema.enabled": False, "run.max_epochs": 2})
    )
    full_evals = [r["epoch"] for r in read_metrics(tmp_path / "full" / "metrics.jsonl") if r.get("split") == "val"]
    stop_evals = [r["epoch"] for r in read_metrics(tmp_path / "stopped" / "metrics.jsonl") if r.get("split") == "val"]
    assert full_evals == [1, 2] and stop_evals == [1]
    assert full.val_acc1 is not None and stopped.val_acc1 is not None and stopped.stopped == "max_epochs"


def test_max_steps_stops_inside_an_epoch_and_resume_goes_on(images, tmp_path):
    out = tmp_path / "run"
    first = train(tiny_recipe(images, out, **{"run.max_steps": 5}))
    assert first.stopped == "max_steps" and first.steps == 5 and first.val_acc1 is None
    assert torch.load(out / "last.pth", weights_only=True)["position"] == {"epoch": 0, "batch": 5, "step": 5}
    second = train(tiny_recipe(images, out, **{"run.max_steps": 12, "run.resume": True}))
    assert second.steps == 12 and [s for s, _ in step_losses(out)] == list(range(12))
    assert len([r for r in read_metrics(out / "metrics.jsonl") if r.get("split") == "val"]) == 1


# -- resume that loses nothing ---------------------------------------------------------------------

KILLED_RUN = """
import sys, time
from kit.config.recipes import resolve
from kit.train import train

class Slow:
    def on_step(self, record):
        time.sleep(0.15)

train(resolve(sys.argv[1]), callbacks=[Slow()])
"""


def test_sigkill_then_resume_repeats_the_uninterrupted_run(images, tmp_path):
    changes = {"epochs": 3, "ema.enabled": True, "ema.validate": True}
    reference = tmp_path / "reference"
    train(tiny_recipe(images, reference, **changes))

    out = tmp_path / "killed"
    recipe = tmp_path / "killed.json"
    recipe.write_text(json.dumps(tiny_recipe(images, out, **changes, **{"run.save_every": 1})))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(recipe)], env=subprocess_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = out / "metrics.jsonl"
            if metrics.exists() and metrics.read_text().count('"iter"') >= 11:  # inside epoch 1, past a validation
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = len(step_losses(out))
    assert 11 <= killed_at < 24

    resumed = train(tiny_recipe(images, out, **changes, **{"run.resume": True, "run.save_every": 1}))
    assert resumed.steps == 24
    assert step_losses(out) == step_losses(reference)  # exactly, step by step, no step twice or missing
    assert log_iterations(out) == list(range(24))
    evals = lambda run: [r for r in read_metrics(run / "metrics.jsonl") if "split" in r]  # noqa: E731
    assert evals(out) == evals(reference)
    assert "resumed from" in (out / "train.log").read_text()


def test_workers_do_not_change_the_run(images, tmp_path):
    """Augmentation is seeded per sample, so worker processes give the same losses as none."""
    a = train(tiny_recipe(images, tmp_path / "a", **{"run.max_steps": 6}))
    b = train(tiny_recipe(images, tmp_path / "b", **{"run.max_steps": 6, "data.num_workers": 2}))
    assert step_losses(tmp_path / "a") == step_losses(tmp_path / "b") and a.last_loss == b.last_loss


# -- several processes ---------------------------------------------------------------------------


def test_two_processes_follow_the_single_process_curve(images, tmp_path):
    """torchrun, 2 gloo processes x batch 4 == 1 process x batch 8 (Mixup and drop-path off: they draw per rank)."""
    changes = {"mixup": None, "model.drop_path_rate": 0.0, "run.max_steps": 10}
    single = tmp_path / "single"
    train(tiny_recipe(images, single, **changes))

    double = tmp_path / "double"
    recipe = tmp_path / "ddp.json"
    recipe.write_text(json.dumps(tiny_recipe(images, double, **changes, batch_size=4)))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "kit",
        "train",
        "--recipe",
        str(recipe),
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((double / "config.json").read_text())
    assert config["derived"]["world_size"] == 2 and config["derived"]["global_batch"] == 8
    assert config["derived"]["lr"] == json.loads((single / "config.json").read_text())["derived"]["lr"]
    one, two = step_losses(single), step_losses(double)
    assert [s for s, _ in two] == list(range(10))
    assert max(abs(a - b) for (_, a), (_, b) in zip(one, two)) < 1e-5
    assert "gloo" in (double / "train.log").read_text()


# -- when things go wrong -------------------------------------------------------------------------


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_checkpoint(images, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_recipe(images, out, mixup=None, grad_clip=None, **{"optimizer.lr": 1e36, "run.save_every": 1})
    with pytest.raises(
        UserError, match=r"the loss is nan at step (\d+) .*Last good checkpoint: .*last\.pth \(step \1\)"
    ) as info:
        train(cfg)
    bad_step = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    assert bad_step >= 1
    assert torch.load(out / "last.pth", weights_only=True)["position"]["step"] == bad_step
    assert step_losses(out)[-1][1] is None  # NaN is written as null in metrics.jsonl


def test_resuming_another_models_checkpoint_is_a_clear_error(images, tmp_path, capsys):
    from kit.cli import main

    out = tmp_path / "run"
    train(tiny_recipe(images, out, **{"run.max_steps": 2}))
    other = tiny_recipe(images, out, **{"model.name": "vit_small_patch16_224"})
    recipe = tmp_path / "other.json"
    recipe.write_text(json.dumps(other))
    assert main(["train", "--recipe", str(recipe), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "was written for model vit_tiny_patch16_224" in err and "builds vit_small_patch16_224" in err
    assert "Traceback" not in err
    # a fresh run into a folder that holds one is refused too, unless --overwrite
    assert main(["train", "--recipe", str(tmp_path / "other.json")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_kit_train_resolves_the_recipe_and_the_device_once(images, tmp_path, monkeypatch, capsys):
    """From the command line to the loop, the recipe is resolved (and checked) once, and the device is too."""
    from kit.cli import main
    from kit.device import shim

    calls = {"recipe": 0, "device": 0}

    def counted(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(recipes, "resolve", counted("recipe", recipes.resolve))
    monkeypatch.setattr(shim, "resolve", counted("device", shim.resolve))
    recipe = tmp_path / "tiny.json"
    recipe.write_text(json.dumps(tiny_recipe(images, tmp_path / "run")))
    assert main(["train", "--recipe", str(recipe), "--max-steps", "1", "--device", "cpu"]) == 0
    assert "done (max_steps): 1 steps" in capsys.readouterr().out
    assert calls == {"recipe": 1, "device": 1}


def test_missing_data_exits_2_saying_what_to_run(tmp_path, capsys):
    from kit.cli import main

    code = main(
        ["train", "--recipe", "workshop_hivit", "--data", str(tmp_path / "digits"), "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"python -m data_prep digits --out {tmp_path / 'digits'}" in err and "Traceback" not in err


def test_skip_corrupt_counts_and_reports(tmp_path, make_images):
    root = make_images(tmp_path / "d", classes=2, train_per_class=8, val_per_class=2)
    bad = root / "train" / "n00000000" / "n00000000_003.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        train(tiny_recipe(root, tmp_path / "a", epochs=1))
    result = train(tiny_recipe(root, tmp_path / "b", epochs=1, **{"run.skip_corrupt": True}))
    assert len(result.skipped_files) == 1 and result.skipped_files[0].startswith(str(bad))
    assert f"skipped unreadable image {bad}" in (tmp_path / "b" / "train.log").read_text()


def test_a_failing_augmentation_exits_2_in_one_line_and_the_run_resumes(tmp_path, capsys, monkeypatch, make_images):
    """A transform that raises (as Pillow 13's posterize did) names the image, the sample key and the op, in
    one line and exit 2, through a DataLoader worker; the last checkpoint then resumes the run."""
    from kit.cli import main
    from kit.data import loaders as data

    root = make_images(tmp_path / "d", classes=2, train_per_class=16, val_per_class=2)
    bad = root / "train" / "n00000001" / "n00000001_005.png"
    good = bad.read_bytes()
    Image.new("RGB", (15, 15)).save(bad)
    real = data.build_transform

    def failing_on_odd_sizes(data_cfg, training):
        transform = real(data_cfg, training)

        def apply(img):
            if img.size == (15, 15):
                raise ValueError("bits must be between or equal to 1 and 8")
            return transform(img)

        return apply

    monkeypatch.setattr(data, "build_transform", failing_on_odd_sizes)
    out = tmp_path / "run"
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(tiny_recipe(root, out, epochs=1, **{"run.save_every": 1, "data.num_workers": 1})))
    assert main(["train", "--recipe", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert f"augmentation failed on image {bad} (sample epoch 0, index " in err and "ValueError: bits must be" in err
    stopped = int(re.search(r"Training stopped at step (\d+)", err).group(1))
    assert f"last.pth (step {stopped})" in err and "--resume" in err
    bad.write_bytes(good)
    assert main(["train", "--recipe", str(recipe), "--resume"]) == 0
    assert [s for s, _ in step_losses(out)] == list(range(4))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in recipes.list_recipes() if n.endswith("_in1k")])
def test_imagenet_recipes_complete_the_100_step_alignment_run_with_their_own_augmentation(name, digits_dir, tmp_path):
    """The ModelZoo alignment run (100 steps at batch 64) with the recipe's RandAugment, erasing and Mixup/CutMix;
    only the model (its workshop size) and the image size (32 px) are made small. Pillow 13 broke it at step 17."""
    small = "hivit_workshop_32" if name.startswith("hivit") else "cait_workshop_32"
    cfg = recipes.resolve(
        name,
        {
            "data": str(digits_dir),
            "out": str(tmp_path / "run"),
            "max_steps": 100,
            "batch_size": 64,
            "progress": False,
            "workers": 0,
        },
        [f"model.name={small}", "data.img_size=32", "eval_every=0"],
    )
    assert cfg["data"]["train"]["auto_augment"] == "rand-m9-mstd0.5-inc1"
    result = train(cfg)
    assert result.steps == 100 and result.stopped == "max_steps"


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one(images, tmp_path):
    """``--compile`` (torch.compile's default backend) runs the same steps as eager, to float rounding; on every
    torch the kit supports, the SDAA floor's 2.2 included."""
    eager = train(tiny_recipe(images, tmp_path / "eager", mixup=None, **{"run.max_steps": 3}))
    compiled = train(tiny_recipe(images, tmp_path / "compiled", mixup=None, compile=True, **{"run.max_steps": 3}))
    assert compiled.steps == eager.steps == 3
    for (s1, a), (s2, b) in zip(step_losses(tmp_path / "eager"), step_losses(tmp_path / "compiled")):
        assert s1 == s2 and a == pytest.approx(b, rel=1e-3)


def test_out_of_memory_becomes_advice():
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    from kit.device.shim import resolve

    with pytest.raises(UserError, match=r"out of memory on cpu at step 3 .*--batch-size 64.*--amp"):
        with friendly_errors(resolve("cpu"), 64, "at step 3"):
            raise oom("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(ValueError):  # anything else keeps its traceback
        with friendly_errors(resolve("cpu"), 64, "at step 3"):
            raise ValueError("a bug")


# -- the schedules the recipes build ---------------------------------------------------------------


def _lr_curve(cfg: dict, world: int, steps_per_epoch: int, at: list[int]) -> list[float]:
    lr, _ = recipes.scaled_lr(cfg, world)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = build_scheduler(opt, cfg["schedule"], lr, cfg["epochs"], steps_per_epoch)
    out = []
    for step in at:
        sched.step(step // steps_per_epoch)
        sched.step_update(step)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_hivit_schedule_is_mmpretrains():
    """1e-3 at global batch 1024, LinearLR from factor 1e-3 over 20 epochs, cosine to 1e-5 at epoch 300."""
    cfg = recipes.get_recipe("hivit_base_in1k")
    assert recipes.scaled_lr(cfg, 16)[0] == pytest.approx(1e-3)
    assert recipes.scaled_lr(cfg, 1)[0] == pytest.approx(1e-3 * 64 / 1024)
    spe = 1251  # ImageNet at 1024 per step
    start, mid_warmup, peak, mid_cos, end = _lr_curve(cfg, 16, spe, [0, 10 * spe, 20 * spe, 160 * spe, 300 * spe - 1])
    assert start == pytest.approx(1e-6) and mid_warmup == pytest.approx(1e-6 + (1e-3 - 1e-6) / 2, rel=1e-3)
    assert peak == pytest.approx(1e-3) and mid_cos == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-3)
    assert end == pytest.approx(1e-5, rel=1e-3)


def test_cait_schedule_is_deits():
    """5e-4 x 64/512, warm-up from 1e-6 stepped per epoch (constant inside an epoch), min 1e-5."""
    cfg = recipes.get_recipe("cait_s24_in1k")
    lr = recipes.scaled_lr(cfg, 1)[0]
    assert lr == pytest.approx(6.25e-5)
    spe = 20018
    e0a, e0b, e1, e5 = _lr_curve(cfg, 1, spe, [0, 100, spe, 5 * spe])
    assert e0a == e0b == pytest.approx(1e-6)  # the 100-iteration alignment run trains at 1e-6
    assert e1 == pytest.approx(1e-6 + (lr - 1e-6) / 5)
    assert e5 < lr  # DeiT's warm-up lies inside the cosine (no prefix)


def test_no_weight_decay_on_norms_biases_and_position_embeddings():
    import timm

    model = timm.create_model("vit_tiny_patch16_224", img_size=16, patch_size=4, depth=1, embed_dim=32, num_heads=2)
    opt = build_optimizer(model, recipes.get_recipe("cait_s24_in1k")["optimizer"], 1e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    decay = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    assert {"pos_embed", "cls_token", "norm.weight", "blocks.0.attn.qkv.bias", "head.bias"} <= no_decay
    assert {"blocks.0.attn.qkv.weight", "head.weight", "patch_embed.proj.weight"} <= decay
    assert type(opt).__name__ == "AdamW" and opt.defaults["eps"] == 1e-8


@pytest.mark.parametrize("name", recipes.list_recipes())
def test_every_recipe_builds_its_model_on_the_meta_device(name):
    from kit.data.transforms import build_transform
    from kit.train import build_criterion, build_model

    cfg = recipes.get_recipe(name)
    with torch.device("meta"):
        model = build_model(cfg["model"], 1000 if "in1k" in name else 10, cfg["data"]["img_size"])
    assert sum(p.numel() for p in model.parameters()) > 1e4
    opt = build_optimizer(model, cfg["optimizer"], recipes.scaled_lr(cfg, 1)[0])
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert "pos_embed" in no_decay and all(
        n in no_decay for n in names.values() if n.endswith("relative_position_bias_table")
    )
    build_scheduler(opt, cfg["schedule"], 1e-3, cfg["epochs"], 100)
    build_criterion(cfg, 10)
    build_transform(cfg["data"], True), build_transform(cfg["data"], False)


@pytest.mark.parametrize("name, shrink", [("hivit_tiny_in1k", {"depths": (1, 1, 1)}), ("cait_s24_in1k", {"depth": 1})])
def test_imagenet_recipes_run_end_to_end_on_small_images(name, shrink, images, tmp_path):
    """The full recipe (RandAugment, erasing, Mixup/CutMix, smoothing, EMA, clipping, its schedule) for
    3 steps; only the depth is cut and the images are 32 px, to fit a test."""
    cfg = recipes.resolve(
        name,
        {"data": str(images), "out": str(tmp_path / "run"), "max_steps": 3, "batch_size": 8, "progress": False},
        [f"model.kwargs={shrink!r}", "data.img_size=32", "data.num_workers=0"],
    )
    result = train(cfg)
    assert result.steps == 3 and all(loss is not None for _, loss in step_losses(tmp_path / "run"))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["recipe"]["data"]["train"]["auto_augment"] == "rand-m9-mstd0.5-inc1"
    assert config["recipe"]["mixup"]["cutmix_alpha"] == 1.0


def test_cli_flags_map_onto_the_recipe():
    from kit.cli import COMMANDS, build_parser
    from kit.train.command import config_from_args

    parser = build_parser(COMMANDS, "kit", "", "train")
    args = parser.parse_args(
        [
            "train",
            "--recipe",
            "workshop_cait",
            "--amp",
            "--resume",
            "--batch-size",
            "32",
            "--lr",
            "1e-3",
            "--max-steps",
            "100",
            "--save-every",
            "10",
            "--no-ema",
            "--set",
            "grad_clip=None",
        ]
    )
    cfg = config_from_args(args)
    assert cfg["amp"] == "auto" and cfg["run"]["resume"] is True and cfg["batch_size"] == 32
    assert cfg["optimizer"]["lr"] == 1e-3 and cfg["run"]["max_steps"] == 100 and cfg["run"]["save_every"] == 10
    assert cfg["ema"]["enabled"] is False and cfg["grad_clip"] is None and cfg["run"]["progress"] is True
    args = parser.parse_args(
        ["train", "--recipe", "workshop_cait", "--amp", "bf16", "--resume", "runs/x/last.pth", "--no-progress"]
    )
    cfg = config_from_args(args)
    assert cfg["amp"] == "bf16" and cfg["run"]["resume"] == "runs/x/last.pth" and cfg["run"]["progress"] is False
    assert cfg["ema"]["enabled"] is recipes.get_recipe("workshop_cait")["ema"]["enabled"]


def test_optimizer_fused_auto_true_false():
    import timm

    from kit.device.shim import resolve
    from kit.train import use_fused_optimizer

    cpu = resolve("cpu")
    model = timm.create_model("hivit_workshop_32")
    cfg = recipes.get_recipe("workshop_hivit")["optimizer"]
    assert cfg["fused"] == "auto"
    # "auto" follows the device's probe (torch 2.2 has no fused CPU AdamW, newer torch has); torch's own default
    # for ``fused`` is None or False depending on the version, so only its truth value is the contract
    assert bool(build_optimizer(model, cfg, 1e-3, cpu).defaults.get("fused")) is cpu.fused_optimizer()
    assert not build_optimizer(model, cfg, 1e-3).defaults.get("fused")  # no device given: torch's default
    assert not build_optimizer(model, dict(cfg, fused=False), 1e-3, cpu).defaults.get("fused")
    assert not use_fused_optimizer(dict(cfg, opt="sgd"), cpu)  # only Adam/AdamW are fused by the kit
    with pytest.raises(UserError, match=r"optimizer.fused = 'yes' \(from --set\): must be one of True, False, auto"):
        recipes.resolve("workshop_hivit", sets=["optimizer.fused=yes"])  # the value is the schema's to check
    with pytest.raises(UserError, match="no fused kernel"):
        use_fused_optimizer(dict(cfg, opt="sgd", fused=True), cpu)
