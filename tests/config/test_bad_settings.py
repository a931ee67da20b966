"""Bad settings are refused before anything runs: exit code 2, one line naming the key, the value and what is
allowed, no traceback, and nothing written (not even the run folder's lock beside it).

``kit train``, ``kit workshop`` and ``kit compare`` run through ``kit.cli.main`` in this process (the code path
of the ``kit`` command: it returns the exit code, and argparse's refusals exit through SystemExit); one test
runs the real ``python -m kit train`` in a process of its own, and one (slow) a real notebook kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kit.workshop as workshop
from kit.config import checks, recipes, registry, schema
from kit.core.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "kit" / "assets" / "modelzoo_logs"


def run_kit(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``kit ARGV``, in this process."""
    from kit.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's refusals
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder``, hidden ones included: path -> (size, mtime_ns)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            stat = path.stat()
            found[str(path.relative_to(folder))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return found


def assert_one_line_exit_2(code: int, out: str, err: str, *expected: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    assert err.endswith("\n") and len(err.splitlines()) == 1, err
    assert out == "", out
    for text in expected:
        assert text in err, (text, err)


@pytest.fixture
def parent(tmp_path) -> Path:
    """A folder that already holds a file: a refused run must leave it exactly as it was."""
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "keep.txt").write_text("written before the run\n")
    return folder


# -- kit train ----------------------------------------------------------------------------------------------

#: (flags, what the one line must say). The first four are the issue's; the others are what a user could type.
BAD_TRAIN = {
    "batch-size 0": (["--batch-size", "0"], "recipe workshop_hivit: batch_size = 0 (from --batch-size): "
                     "must be an integer >= 1"),
    "lr -1": (["--lr", "-1"], "optimizer.lr = -1.0 (from --lr): must be a number > 0"),
    "optimizer.lr=abc": (["--set", "optimizer.lr=abc"], "optimizer.lr = 'abc' (from --set): must be a number > 0"),
    "epochs -1": (["--epochs", "-1"], "epochs = -1 (from --epochs): must be an integer >= 1"),
    "max-steps 0": (["--max-steps", "0"], "run.max_steps = 0 (from --max-steps): must be an integer >= 1"),
    "max-epochs 0": (["--max-epochs", "0"], "run.max_epochs = 0 (from --max-epochs): must be an integer >= 1"),
    "img_size 30 vs patch 8": (["--set", "data.img_size=30"], "data.img_size = 30 (from --set): must be a multiple "
                               "of hivit_workshop_32's patch size 8"),
    "warm-up longer than the run": (["--set", "schedule.warmup_epochs=50"],
                                    "schedule.warmup_epochs = 50 (from --set): the warm-up must fit in the run: "
                                    "at most epochs = 40"),
    "epochs shorter than the warm-up": (["--epochs", "2", "--set", "schedule.warmup_epochs=3"],
                                        "schedule.warmup_epochs = 3 (from --set)"),
    "amp fp8": (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
    "optimizer sgdd": (["--set", "optimizer.opt=sgdd"], "optimizer.opt = 'sgdd' (from --set): must be an optimizer "
                       "timm has"),
    "label_smoothing 1.5": (["--set", "label_smoothing=1.5"], "label_smoothing = 1.5 (from --set): must be a number "
                            "in [0, 1)"),
    "model vit_nope": (["--set", "model.name=vit_nope"], "model.name = 'vit_nope' (from --set): must be a model "
                       "registered in timm"),
    "eval_batch_size 0": (["--set", "eval_batch_size=0"], "eval_batch_size = 0 (from --set): must be an integer >= 1"),
    "workers -1": (["--workers", "-1"], "data.num_workers = -1 (from --workers): must be an integer >= 0"),
    "ema decay 2": (["--set", "ema.decay=2"], "ema.decay = 2 (from --set): must be a number in (0, 1)"),
    "save-every -5": (["--save-every", "-5"], "run.save_every = -5 (from --save-every): must be an integer >= 0"),
    "scale out of order": (["--set", "data.train.scale=(0.9,0.1)"],
                           "data.train.scale = (0.9, 0.1) (from --set): must be (min, max) with 0 < min <= max <= 1"),
    "lr nan": (["--lr", "nan"], "optimizer.lr = nan (from --lr): must be a number > 0"),
    "device gpu": (["--device", "gpu"], "run.device = 'gpu' (from --device): must be auto, cpu, mps"),
    "seed -1": (["--seed", "-1"], "seed = -1 (from --seed): must be an integer >= 0"),
    "betas 1.5": (["--set", "optimizer.betas=(0.9,1.5)"], "optimizer.betas = (0.9, 1.5) (from --set): must be two "
                  "numbers in [0, 1)"),
    "weight decay -0.05": (["--set", "optimizer.weight_decay=-0.05"], "optimizer.weight_decay = -0.05 (from --set): "
                           "must be a number >= 0"),
    "grad_clip -1": (["--set", "grad_clip=-1"], "grad_clip = -1 (from --set): must be a number >= 0"),
    "odd batch with mixup": (["--batch-size", "63", "--set", "mixup={'mixup_alpha': 0.8}"],
                             "batch_size = 63 (from --batch-size): must be even: Mixup/CutMix"),
    "mixup typo": (["--set", "mixup={'alpha': 0.8}"], "mixup.alpha = 0.8 (from --set): unknown key; mixup takes"),
    "model kwargs typo": (["--set", "model.kwargs={'depthz': 3}"],
                          "model.kwargs = {'depthz': 3} (from --set): timm cannot build hivit_workshop_32 with it"),
    "unknown augmentation": (["--set", "data.train.auto_augment=foo"], "data.train.auto_augment = 'foo' (from --set): "
                             "must be a timm augmentation policy"),
    "num_classes 1": (["--set", "model.num_classes=1"], "model.num_classes = 1 (from --set): must be an integer >= 2"),
    "format typo": (["--set", "data.format=folders"], "data.format = 'folders' (from --set): must be one of auto, "
                    "annotations, imagefolder"),
    "batch size True": (["--set", "batch_size=true"], "batch_size = True (from --set): must be an integer >= 1"),
    "epochs abc": (["--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
}


@pytest.mark.parametrize("flags, expected", list(BAD_TRAIN.values()), ids=list(BAD_TRAIN))
def test_kit_train_refuses_a_bad_setting_in_one_line_and_writes_nothing(flags, expected, parent, capsys):
    before = snapshot(parent)
    argv = ["train", "--recipe", "workshop_hivit", "--data", parent / "no-data-here", "--out", parent / "run", *flags]
    assert_one_line_exit_2(*run_kit(argv, capsys), "kit train: error: ", expected)
    assert snapshot(parent) == before  # no run folder, no .run.lock beside it, keep.txt untouched


def test_a_refused_run_leaves_an_existing_run_folder_alone_even_with_overwrite(parent, capsys):
    run = parent / "run"
    run.mkdir()
    for name in ("last.pth", "best.pth", "metrics.jsonl", "train.log", "config.json"):
        (run / name).write_text(f"a previous run's {name}\n")
    before = snapshot(parent)
    argv = ["train", "--recipe", "workshop_cait", "--data", parent / "none", "--out", run, "--overwrite",
            "--batch-size", "0"]
    assert_one_line_exit_2(*run_kit(argv, capsys), "recipe workshop_cait: batch_size = 0")
    assert snapshot(parent) == before


def test_the_check_comes_before_the_data_is_read(make_images, parent, capsys):
    """With real data in place the bad value still stops the run first, from the CLI and from train()."""
    from kit.train import train

    data = make_images(parent / "data")
    before = snapshot(parent)
    argv = ["train", "--recipe", "workshop_hivit", "--data", data, "--out", parent / "run", "--epochs", "-1"]
    assert_one_line_exit_2(*run_kit(argv, capsys), "epochs = -1 (from --epochs)")
    cfg = recipes.get_recipe("workshop_hivit")
    cfg["data"]["path"], cfg["run"]["out"], cfg["epochs"] = str(data), str(parent / "run"), -1
    with pytest.raises(UserError, match=r"^recipe workshop_hivit: epochs = -1: must be an integer >= 1$"):
        train(cfg)  # the Python API (notebook 4's route) checks the same way, before the lock
    assert snapshot(parent) == before


def test_the_real_command_exits_2_with_one_line(parent):
    """The issue's silent case, through `python -m kit` in a process of its own."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    before = snapshot(parent)
    r = subprocess.run(
        [sys.executable, "-m", "kit", "train", "--recipe", "workshop_hivit", "--out", str(parent / "run"),
         "--data", str(parent / "none"), "--epochs", "-1"],
        capture_output=True, text=True, cwd=parent, env=env, timeout=300,
    )  # fmt: skip
    assert_one_line_exit_2(r.returncode, r.stdout, r.stderr, "recipe workshop_hivit: epochs = -1 (from --epochs): "
                           "must be an integer >= 1")
    assert snapshot(parent) == before


# -- the recipes themselves ---------------------------------------------------------------------------------


def test_the_schemas_are_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema.RECIPE_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(schema.notebook_parameters_schema(registry.workshop_models()))
    json.dumps(schema.RECIPE_SCHEMA)  # plain data


@pytest.mark.parametrize("mode", ["none", "auto", "fp16", "bf16", True, False])
def test_an_amp_mode_the_recipe_accepts_is_one_the_device_runs(mode):
    from kit.config import recipes
    from kit.device import resolve

    cfg = recipes.resolve("workshop_hivit", {"amp": mode})
    resolve("cpu").amp_policy(cfg["amp"])  # no UserError: the schema and the shim agree on this mode


@pytest.mark.parametrize("mode", ["fp8", "half", "FP16"])
def test_an_amp_mode_the_device_refuses_the_recipe_refuses_first(mode):
    from kit.config import recipes
    from kit.device import resolve

    with pytest.raises(UserError, match="amp"):
        recipes.resolve("workshop_hivit", {"amp": mode})
    with pytest.raises(UserError, match="--amp must be one of"):
        resolve("cpu").amp_policy(mode)


def test_checking_a_recipe_does_not_import_the_slow_iri_checker():
    """rfc3987_syntax compiles ~35 grammars on import (seconds per kernel); the kit's checks never need it."""
    pytest.importorskip("rfc3987_syntax")  # (installed with jsonschema[format-nongpl], i.e. with Jupyter)
    code = ("import sys; from kit.config import recipes; recipes.resolve('workshop_hivit'); "
            "assert 'jsonschema' in sys.modules and 'rfc3987_syntax' not in sys.modules, sorted(sys.modules); "
            "import rfc3987_syntax")  # and a later import of it by someone else still works
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("name", recipes.list_recipes())
def test_every_registered_recipe_validates(name, tmp_path):
    cfg = recipes.resolve(name)
    assert checks.recipe_problem(cfg) is None
    # as config.json holds it (tuples become lists), and with the flags of the README's commands
    assert checks.recipe_problem(json.loads(json.dumps(cfg))) is None
    flags = {"data": tmp_path, "out": tmp_path / "run", "max_steps": 100, "amp": "auto", "batch_size": 8,
             "workers": 0, "save_every": 10, "resume": True, "ema": True}
    recipes.resolve(name, flags, ["eval_every=0", "data.img_size=32", "model.num_classes=10"])


def test_a_json_recipe_names_its_own_mistakes(tmp_path):
    full = recipes.get_recipe("workshop_cait")
    del full["data"]["img_size"]
    (tmp_path / "mine.json").write_text(json.dumps(full | {"name": "mine"}))
    with pytest.raises(UserError, match=r"^recipe mine: data.img_size is missing: must be an integer >= 1$"):
        recipes.resolve(str(tmp_path / "mine.json"))
    full = recipes.get_recipe("workshop_cait") | {"epoch": 3}
    (tmp_path / "typo.json").write_text(json.dumps(full))
    with pytest.raises(UserError, match=r"^recipe workshop_cait: epoch = 3: unknown key; a recipe takes "):
        recipes.resolve(str(tmp_path / "typo.json"))


def test_paths_tuples_and_numpy_numbers_are_plain_values_too(tmp_path):
    import numpy as np

    cfg = recipes.get_recipe("workshop_hivit")
    cfg["data"]["path"], cfg["run"]["out"] = tmp_path, tmp_path / "run"
    cfg["batch_size"], cfg["optimizer"]["lr"] = np.int64(32), np.float32(1e-3)
    assert checks.recipe_problem(cfg) is None


# -- notebook parameters ------------------------------------------------------------------------------------

BAD_PARAMETERS = {
    "epochs -1": ({"epochs": -1}, "epochs = -1: must be an integer >= 1, or None (the recipe's own)"),
    "epochs 0": ({"epochs": 0}, "epochs = 0: must be an integer >= 1"),
    "epochs 2.5": ({"epochs": 2.5}, "epochs = 2.5: must be an integer >= 1"),
    "epochs '5'": ({"epochs": "5"}, "epochs = '5': must be an integer >= 1"),
    "unknown model": ({"models": ["vit_foo"]}, "models = ['vit_foo']: must be a list of workshop models, from "
                      "hivit_workshop_32, cait_workshop_32; 'vit_foo' is not one of them"),
    "models a string": ({"models": "hivit_workshop_32"}, "models = 'hivit_workshop_32': must be a list"),
    "no models": ({"models": []}, "models = []: must be a list of workshop models"),
    "quick 'false'": ({"quick": "false"}, "quick = 'false': must be True, False or None"),
    "amp fp8": ({"amp": "fp8"}, "amp = 'fp8': must be None (the recipe's), True, False, or one of none, auto"),
    "device gpu": ({"device": "gpu"}, "device = 'gpu': must be auto, cpu, mps, cuda, cuda:N, sdaa or sdaa:N"),
    "interactive 'yes'": ({"interactive": "yes"}, "interactive = 'yes': must be True or False"),
    "data_dir None": ({"data_dir": None}, "data_dir = None: must be a path"),
}


@pytest.mark.parametrize("values, expected", list(BAD_PARAMETERS.values()), ids=list(BAD_PARAMETERS))
def test_a_bad_notebook_parameter_is_one_line(values, expected):
    with pytest.raises(UserError) as info:
        workshop.check_notebook_parameters({"epochs": None, "unrelated": object()}, **values)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value), str(info.value)
    assert info.value._render_traceback_() == [f"UserError: {info.value}"]  # how IPython shows it: one line


def _parameters_cell(name: str) -> tuple[dict, list[str]]:
    """(the values notebook ``name``'s parameters cell sets, the first code cell after it as lines)."""
    import nbformat

    cells = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
    at = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    values: dict = {}
    exec(cells[at].source, {}, values)
    setup = next(c for c in cells[at + 1:] if c.cell_type == "code")
    return values, setup.source.splitlines()


@pytest.mark.parametrize("name", workshop.NOTEBOOKS)
def test_each_notebook_checks_its_parameters_first_and_its_defaults_pass(name):
    values, setup = _parameters_cell(name)
    workshop.check_notebook_parameters(values)  # the defaults pass
    workshop.check_notebook_parameters(values, quick=True, interactive=False, epochs=2, amp="true", device="cpu")
    assert "kit.workshop.check_notebook_parameters(globals())" in "\n".join(setup), name
    with pytest.raises(UserError, match="^epochs = -1: "):
        workshop.check_notebook_parameters(values, epochs=-1)


def test_kit_workshop_refuses_a_bad_value_before_any_notebook_runs(parent, capsys):
    before = snapshot(parent)
    argv = ["workshop", "--out", parent / "w", "--device", "cpu", "-p", "epochs", "-1"]
    assert_one_line_exit_2(*run_kit(argv, capsys), "kit workshop: error: epochs = -1 (from -p epochs): must be an "
                           "integer >= 1, or None (the recipe's own)")
    assert_one_line_exit_2(*run_kit(["workshop", "--out", parent / "w", "-p", "models", "vit_foo"], capsys),
                           "models = 'vit_foo' (from -p models): must be a list of workshop models")
    assert snapshot(parent) == before


def test_a_user_error_inside_a_notebook_ends_kit_workshop_in_one_line(parent, capsys, monkeypatch):
    """Papermill replaced: notebook 4 fails as a notebook shows a UserError (one rendered line); a bug keeps
    the longer report (exit 1)."""
    import papermill

    def execute(src, target, parameters, **kwargs):
        if Path(src).name == "04_training.ipynb":
            message = "recipe workshop_hivit: epochs = -1: must be an integer >= 1"
            raise papermill.PapermillExecutionError(8, 5, "trainer.train(cfg)", "UserError", message,
                                                    [f"UserError: {message}"])
        Path(target).write_text(Path(src).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    code, out, err = run_kit(["workshop", "--out", parent / "w", "--device", "cpu"], capsys)
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err == ("kit workshop: error: notebook 04_training.ipynb: recipe workshop_hivit: epochs = -1: must be an "
                   "integer >= 1\n")
    assert "PapermillExecutionError" not in out + err

    def bug(src, target, parameters, **kwargs):
        raise papermill.PapermillExecutionError(2, 1, "1 / 0", "ZeroDivisionError", "division by zero",
                                                ["-----", "ZeroDivisionError  Traceback (most recent call last)",
                                                 "ZeroDivisionError: division by zero"])

    monkeypatch.setattr(papermill, "execute_notebook", bug)
    with pytest.raises(workshop.WorkshopFailed, match="ZeroDivisionError"):
        workshop.run_workshop(parent / "w2", device="cpu", log=lambda line: None)


@pytest.mark.slow
def test_a_kernel_shows_a_user_error_as_one_line_and_the_workshop_reports_it(tmp_path, monkeypatch):
    """A real kernel (about 20 s): a notebook whose own parameters cell says ``epochs = -1`` stops in its first
    code cell, IPython records the one rendered line, and kit workshop reports it naming the notebook."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('epochs = -1\nmodels = ["hivit_workshop_32"]')
    params.metadata["tags"] = ["parameters"]
    setup = nbformat.v4.new_code_cell("import kit.workshop\nkit.workshop.check_notebook_parameters(globals())")
    nb.cells = [params, setup, nbformat.v4.new_code_cell("print('not reached')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "nbs").mkdir()
    nbformat.write(nb, tmp_path / "nbs" / "x.ipynb")
    monkeypatch.setattr(workshop.runner, "notebooks_dir", lambda: tmp_path / "nbs")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with pytest.raises(UserError) as info:
        workshop.run_workshop(tmp_path / "w", device="cpu", notebooks=("x.ipynb",), log=lambda line: None)
    assert str(info.value) == "notebook x.ipynb: epochs = -1: must be an integer >= 1, or None (the recipe's own)"
    executed = nbformat.read(tmp_path / "w" / "notebooks" / "x.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert [o.traceback for o in errors] == [[f"UserError: {str(info.value).split(': ', 1)[1]}"]]


# -- kit compare --------------------------------------------------------------------------------------------

BAD_COMPARE = {
    "smooth -3": (["--smooth", "-3"], "argument --smooth: -3: must be a whole number of points, 0 or more"),
    "smooth 0.5": (["--smooth", "0.5"], "argument --smooth: 0.5: must be a whole number of points"),
    "skip -1": (["--skip", "-1"], "argument --skip: -1: must be a whole number of points, 0 or more"),
    "skip beyond the curve": (["--skip", "500"], "--skip 500 leaves nothing to compare: the curves pair 101 points, "
                              "so it must be at most 100"),
    "smooth beyond the curve": (["--skip", "90", "--smooth", "20"], "--smooth 20: must be at most the 11 points "
                                "compared (after --skip 90)"),
    "align diagonal": (["--align", "diagonal"], "argument --align: invalid choice: 'diagonal'"),
    "verdict noise alone": (["--verdict", "noise"], "--verdict noise needs more runs of the reference setup"),
    "format nope": (["--format", "nope"], "argument --format: invalid choice: 'nope'"),
}


@pytest.mark.parametrize("flags, expected", list(BAD_COMPARE.values()), ids=list(BAD_COMPARE))
def test_kit_compare_refuses_a_bad_option_in_one_line(flags, expected, parent, capsys):
    before = snapshot(parent)
    argv = ["compare", LOGS / "cait_s24_cuda.log", LOGS / "cait_s24_sdaa.log", "--plot", parent / "plot.png", *flags]
    assert_one_line_exit_2(*run_kit(argv, capsys), "kit compare: error: ", expected)
    assert snapshot(parent) == before  # no plot
