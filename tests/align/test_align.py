"""kit align: dump one training step on the CPU, compare dumps, name the first divergent module."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.align.compare import stats_errors, tensor_errors
from kit.align.dumpio import INDEX, TENSORS, read_dump, write_dump
from kit.align.record import disable_dropout
from kit.align.stats import stats_dict, stats_vector
from kit.align.tolerance import precision, tolerance_for
from kit.cli import main
from kit.models import create
from kit.validate.configdiff import config_differences

HIVIT, CAIT = "hivit_workshop_32", "cait_workshop_32"
ROOT = Path(__file__).resolve().parents[2]
JSON_KEYS = {"aligned", "first_forward", "first_gradient", "first_nonfinite", "modules"}


@pytest.fixture(scope="module")
def data(tmp_path_factory, make_images) -> Path:
    return make_images(tmp_path_factory.mktemp("align") / "images", classes=4, val_per_class=4, size=16)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dumps")


def checkpoint(path: Path, model: str, change=None) -> Path:
    """The seeded initial weights of ``model`` (4 classes) as a kit checkpoint, with ``change(state_dict)`` applied."""
    torch.manual_seed(0)
    state = create(model, num_classes=4).state_dict()
    if change is not None:
        change(state)
    torch.save({"model": state, "epoch": 0}, path)
    return path


def dump(data: Path, out: Path, model: str = HIVIT, *extra: str) -> Path:
    code = main(["align", "dump", "--model", model, "--data", str(data), "--out", str(out), "--device", "cpu", *extra])
    assert code == 0
    return out


def compare_json(capsys, ref: Path, cand: Path, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["align", "compare", str(ref), str(cand), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def reference(data, work) -> Path:
    return dump(data, work / "ref", HIVIT, "--checkpoint", str(checkpoint(work / "ref.pth", HIVIT)))


@pytest.fixture(scope="module")
def again(data, work, reference) -> Path:
    return dump(data, work / "again", HIVIT, "--checkpoint", str(work / "ref.pth"))


def test_identical_dumps_are_aligned_and_json_has_the_documented_keys(capsys, reference, again):
    code, result = compare_json(capsys, reference, again)
    assert code == 0 and result["aligned"] is True
    assert JSON_KEYS <= set(result)
    assert result["first_forward"] is None and result["first_gradient"] is None and result["first_nonfinite"] is None
    modules = result["modules"]
    assert all({"name", "max_abs", "max_rel", "cosine", "within"} <= set(m) for m in modules)
    assert all(m["max_abs"] == 0 and m["within"] for m in modules)  # same step, same CPU: bitwise the same
    names = [m["name"] for m in modules]
    assert names[0] == "<input>" and "" in names and "blocks.6.drop_path[1]" in names  # root; a module run twice
    assert result["config_differences"] == []


def test_index_is_strict_json_with_module_tree_order_and_environment(reference):
    index = json.loads((reference / INDEX).read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    model = create(HIVIT, num_classes=4)
    assert index["module_tree"] == [n for n, _ in model.named_modules()]
    grads = [e["name"] for e in index["entries"] if e["kind"] == "grad"]
    assert sorted(grads) == sorted(n for n, _ in model.named_parameters())
    assert grads[0].startswith("head.") and grads[-1].startswith("patch_embed.")  # backward order
    env = index["config"]["environment"]
    assert {"kit", "torch", "timm", "device"} <= set(env) and env["device"]["type"] == "cpu"
    assert index["config"]["derived"]["precision"] == "fp32" and index["batch"]["labels"]
    assert set(index["entries"][1]["stats"]) >= {"shape", "dtype", "mean", "std", "min", "max", "norm", "nan", "inf"}


@pytest.mark.parametrize("model, param, first", [
    (HIVIT, "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc1"),
    (CAIT, "blocks.1.attn.proj.weight", "blocks.1.attn.proj"),
])
def test_a_weight_changed_by_one_percent_is_named_first(capsys, data, work, model, param, first):
    base = checkpoint(work / f"{model}.pth", model)
    changed = checkpoint(work / f"{model}-changed.pth", model, lambda sd: sd[param].mul_(1.01))
    ref = dump(data, work / f"{model}-ref", model, "--checkpoint", str(base))
    cand = dump(data, work / f"{model}-changed", model, "--checkpoint", str(changed))
    code, result = compare_json(capsys, ref, cand, "--plot", str(work / f"{model}.png"))
    assert code == 1 and result["aligned"] is False
    assert result["first_forward"] == first
    assert result["first_gradient"] is not None and result["first_nonfinite"] is None
    assert any("initial weights" in line for line in result["config_differences"])
    assert (work / f"{model}.png").stat().st_size > 0
    before = next(m for m in result["modules"] if m["name"] == first)
    assert before["max_rel"] == pytest.approx(0.01, rel=0.2)


def test_statistics_only_still_finds_the_module(capsys, data, work, reference):
    changed = checkpoint(work / "norm.pth", HIVIT, lambda sd: sd["blocks.3.norm2.weight"].mul_(1.01))
    ref = dump(data, work / "ref-stats", HIVIT, "--checkpoint", str(work / "ref.pth"), "--full-tensors-max", "0")
    cand = dump(data, work / "norm-stats", HIVIT, "--checkpoint", str(changed), "--full-tensors-max", "0")
    code, result = compare_json(capsys, ref, cand)
    assert code == 1 and result["first_forward"] == "blocks.3.norm2"
    assert {m["basis"] for m in result["modules"]} == {"statistics"}
    assert all(m["cosine"] is None for m in result["modules"])
    code, result = compare_json(capsys, reference, cand)  # full tensors on one side only: statistics
    assert code == 1 and result["first_forward"] == "blocks.3.norm2"


def test_nan_in_one_module_is_the_first_nonfinite(capsys, data, work, reference):
    def poison(sd):
        sd["blocks.3.mlp.fc2.weight"][0, 0] = math.nan

    cand = dump(data, work / "nan", HIVIT, "--checkpoint", str(checkpoint(work / "nan.pth", HIVIT, poison)))
    code, result = compare_json(capsys, reference, cand)
    assert code == 1 and result["first_nonfinite"] == result["first_forward"] == "blocks.3.mlp.fc2"
    assert main(["align", "compare", str(reference), str(cand)]) == 1
    assert "first NaN/Inf: blocks.3.mlp.fc2" in capsys.readouterr().out


def test_a_healthy_bf16_autocast_step_is_within_the_bf16_tolerance(capsys, data, work, reference):
    cand = dump(data, work / "bf16", HIVIT, "--checkpoint", str(work / "ref.pth"), "--amp", "bf16")
    index = json.loads((cand / INDEX).read_text())
    assert index["amp"]["enabled"] and index["amp"]["dtype"] == "bf16"  # forced on a CPU without native bf16 too
    code, result = compare_json(capsys, reference, cand)
    assert code == 0, [m for m in result["modules"] if not m["within"]][:3]
    assert {m["precision"] for m in result["modules"]} == {"bf16"}
    assert any("AMP policy" in line for line in result["config_differences"])
    assert max(m["max_rel"] for m in result["modules"] if m["kind"] == "forward") > 1e-4  # it did run in bf16


def test_a_dump_of_another_model_is_exit_2(capsys, data, work, reference):
    other = dump(data, work / "cait", CAIT)
    capsys.readouterr()
    assert main(["align", "compare", str(reference), str(other)]) == 2
    err = capsys.readouterr().err
    assert "module tree differs" in err and CAIT in err


@pytest.mark.parametrize("damage, file", [
    ("truncate", TENSORS), ("delete", TENSORS), ("truncate", INDEX), ("delete", INDEX), ("swap", TENSORS),
])
def test_a_damaged_dump_is_exit_2_naming_the_file(capsys, work, reference, again, damage, file):
    broken = work / f"broken-{damage}-{file}"
    shutil.copytree(again, broken)
    target = broken / file
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:200])
    elif damage == "delete":
        target.unlink()
    else:  # the tensors of another dump
        target.write_bytes((reference / file).read_bytes())
    capsys.readouterr()
    assert main(["align", "compare", str(reference), str(broken)]) == 2
    assert str(target) in capsys.readouterr().err


def test_missing_dump_folder_is_exit_2(capsys, work, reference):
    assert main(["align", "compare", str(reference), str(work / "nowhere")]) == 2
    assert "no such dump folder" in capsys.readouterr().err


def test_dropout_and_drop_path_are_off_in_train_mode():
    model = create(HIVIT, num_classes=4, drop_path_rate=0.5, drop_rate=0.3)
    assert disable_dropout(model) > 0
    model.train()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), model(x))


def test_statistics_bound_the_true_errors_from_below():
    torch.manual_seed(0)
    for _ in range(20):
        r = torch.randn(500) * torch.rand(1) * 10
        c = r + torch.randn(500) * torch.rand(1)
        max_abs, scale, cosine, same = tensor_errors(r, c)
        on = torch.device("cpu")
        s_abs, s_scale, s_cos, s_same = stats_errors(stats_dict(r, stats_vector(r, on).tolist()),
                                                     stats_dict(c, stats_vector(c, on).tolist()))
        assert s_abs <= max_abs * (1 + 1e-9) and s_scale == pytest.approx(scale) and s_cos is None
        assert same and s_same and -1 <= cosine <= 1


def test_stats_match_float64_and_count_nonfinite():
    x = torch.randn(1000)
    x[3], x[5] = math.nan, math.inf
    stats = stats_dict(x, stats_vector(x, torch.device("cpu")).tolist())
    assert stats["nan"] == 1 and stats["inf"] == 1 and stats["mean"] is None
    y = torch.randn(1000)
    stats = stats_dict(y, stats_vector(y, torch.device("cpu")).tolist())
    d = y.double()
    expected = [d.mean(), d.std(correction=0), d.min(), d.max(), d.norm()]
    assert [stats[k] for k in ("mean", "std", "min", "max", "norm")] == pytest.approx([float(v) for v in expected])


def test_tolerance_is_the_looser_sides():
    assert tolerance_for(precision(None, "float32"), precision(None, "float32")).max_rel == 1e-3
    assert tolerance_for(precision(None, "float32"), precision("bf16", "float32")).precision == "bf16"
    assert tolerance_for(precision("fp16", "float16"), precision(None, "float64")).precision == "fp16"
    assert precision("half", "float16") == "bf16"  # SDAA's own half type: the looser
    assert tolerance_for("fp32", "fp32", gradient=True).max_rel > tolerance_for("fp32", "fp32").max_rel


def test_config_differences_lists_what_matters_and_skips_paths():
    def config(**changes):
        cfg = {"recipe": {"batch_size": 64, "data": {"path": "/a", "img_size": 32}, "optimizer": {"lr": 3e-3}},
               "derived": {"global_batch": 64, "lr": 0.006, "precision": "fp32"},
               "environment": {"kit": "0.1.0", "torch": "2.2.0", "timm": "1.0.31",
                               "device": {"device": "cpu", "name": "AMD EPYC"}}}
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            node = cfg
            for p in parents:
                node = node[p]
            node[last] = value
        return cfg

    assert config_differences(config(), config(recipe__data__path="/b")) == []
    lines = config_differences(config(), config(derived__lr=0.012, derived__global_batch=128, recipe__batch_size=128,
                                                derived__precision="autocast bf16", environment__torch="2.4.0",
                                                environment__device={"device": "sdaa", "name": "T100"}))
    text = "\n".join(lines)
    assert lines[0] == "device: cpu (AMD EPYC) vs sdaa (T100)"
    for expected in ("torch version: 2.2.0 vs 2.4.0", "global batch: 64 vs 128", "lr: 0.006 vs 0.012",
                     "AMP policy: fp32 vs autocast bf16", "recipe batch_size: 64 vs 128"):
        assert expected in text


def test_dump_tensors_read_back_with_numpy_bf16_widened_exactly(tmp_path):
    """kit align compare reads dumps with numpy (no torch); numpy has no bfloat16, so a bf16 tensor is widened from
    its raw bits: the numbers must be exactly torch's own bf16 -> float32, NaN and Inf included."""
    torch.manual_seed(0)
    half = (torch.randn(3, 5) * 100).to(torch.bfloat16)
    half[0, 0], half[1, 1], half[2, 2] = math.nan, -math.inf, 2.0**-130  # a subnormal too
    full, ints = torch.randn(4, 2, dtype=torch.float16), torch.arange(6).reshape(2, 3)
    entries = [{"key": key, "saved": True} for key in ("half", "full", "ints")]
    index = {"model": "m", "module_tree": [], "parameters": [], "entries": entries, "amp": {}, "config": {}}
    dump = read_dump(write_dump(tmp_path / "d", index, {"half": half, "full": full, "ints": ints}))
    got = dump.tensor("half")
    assert got.dtype == np.float32 and got.shape == (3, 5)
    np.testing.assert_array_equal(got, half.float().numpy())
    np.testing.assert_array_equal(dump.tensor("full"), full.numpy())
    np.testing.assert_array_equal(dump.tensor("ints"), ints.numpy())


#: Runs ``python -m MODULE ARGS`` and, as the interpreter exits (sys.exit included), prints which of torch and timm
#: it had imported.
PROBE = """import atexit, runpy, sys
atexit.register(lambda: print("imported:", ",".join(m for m in ("torch", "timm") if m in sys.modules)))
module, *args = sys.argv[1:]
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def heavy_imports(module: str, *args: str) -> tuple[int, list[str], str]:
    """``(exit code, [torch, timm as imported], output)`` of ``python -m module args`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", PROBE, module, *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    last = r.stdout.rstrip().rsplit("\n", 1)[-1]
    assert last.startswith("imported:"), r.stdout + r.stderr
    return r.returncode, [m for m in last.removeprefix("imported:").strip().split(",") if m], r.stdout + r.stderr


@pytest.mark.parametrize("module, args, code", [
    ("kit", ("compare", "--help"), 0),
    ("kit", ("align", "compare", "--help"), 0),
    ("kit", ("devices", "--help"), 0),
    ("data_prep", ("--help",), 0),
])
def test_commands_that_need_no_model_import_no_torch_or_timm(module, args, code):
    returncode, heavy, output = heavy_imports(module, *args)
    assert returncode == code and heavy == [], output


def test_kit_align_compare_reads_dumps_without_torch_or_timm(data, reference, again, work):
    """The whole comparison, not only its --help: two dumps of the same step, then a divergent one (exit 1)."""
    returncode, heavy, output = heavy_imports("kit", "align", "compare", str(reference), str(again))
    assert returncode == 0 and heavy == [] and "aligned" in output.lower(), output
    changed = checkpoint(work / "light.pth", HIVIT, lambda sd: sd["blocks.1.mlp.fc1.weight"].mul_(1.01))
    cand = dump(data, work / "light", HIVIT, "--checkpoint", str(changed))
    returncode, heavy, output = heavy_imports("kit", "align", "compare", str(reference), str(cand), "--json")
    assert returncode == 1 and heavy == [], output
    assert json.loads(output[: output.rindex("imported:")])["first_forward"] == "blocks.1.mlp.fc1"
