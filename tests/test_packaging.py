"""The install surface: metadata, the conda file, the two CLIs, the Makefile targets, clean notebooks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # Python 3.9 / 3.10 (the SDAA image's): the same parser, from PyPI
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_project_and_lists_nothing_twice():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = [d for d in deps if isinstance(d, dict)][0]["pip"]
    assert "pip" in conda
    python = [d for d in conda if d.startswith("python")]
    assert python, "environment.yml must pin a python"
    # every conda entry is only the interpreter or pip: the real dependencies come from pyproject.toml
    assert set(conda) == {python[0], "pip"}, conda
    assert pip == ["-e .[test,lab]"], pip  # what `make setup` installs: JupyterLab too
    # and that python satisfies requires-python
    floor = PYPROJECT["project"]["requires-python"].lstrip(">=")
    version = python[0].split("=")[-1]
    assert tuple(map(int, version.split("."))) >= tuple(map(int, floor.split(".")))


def test_dependencies_are_floors_not_pins():
    """SDAA images bring their own torch: metadata may only set floors, and the torch floor must admit 2.2.0."""
    from packaging.requirements import Requirement

    for dep in PYPROJECT["project"]["dependencies"]:
        req = Requirement(dep)
        assert all(spec.operator == ">=" for spec in req.specifier), f"{dep}: use a floor, not a pin or a cap"
        if req.name in ("torch", "torchvision"):
            assert req.specifier.contains({"torch": "2.2.0", "torchvision": "0.17.0"}[req.name]), dep


def test_the_installed_kit_command_runs():
    """The console script the install made (not only ``python -m kit``) starts and names the version."""
    kit = shutil.which("kit", path=str(Path(sys.executable).parent))
    assert kit, f"no kit command next to {sys.executable}: is the project installed?"
    r = subprocess.run([kit, "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("vitkit "), r.stderr


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_python_m_kit_help_lists_every_subcommand():
    from kit.cli import COMMANDS

    r = _run("-m", "kit", "--help")
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", r.stdout, re.M), name


def test_python_m_data_prep_help_lists_every_subcommand():
    from data_prep.cli import COMMANDS

    r = _run("-m", "data_prep", "--help")
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert name in r.stdout


def test_every_subcommand_module_plugs_in():
    """Each listed module offers add_arguments and run, so `kit X --help` works for every X."""
    import importlib

    from data_prep.cli import COMMANDS as DP
    from kit.cli import COMMANDS as KIT

    for module, _ in [*KIT.values(), *DP.values()]:
        m = importlib.import_module(module)
        assert callable(m.add_arguments) and callable(m.run), module


def test_user_error_is_exit_2_without_traceback():
    r = _run("-m", "kit", "devices", "--amp", "fp8")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_makefile_has_the_documented_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("setup", "run", "test", "test-floor", "lab", "test-browser", "setup-emulator", "test-emulator",
                   "test-emulator-stacks", "wheelhouse", "test-offline"):
        assert re.search(rf"^{target}:", text, re.M), target
    assert "KIT_PYTHON" in text and "python3 -m venv" in text.replace("$(PYTHON3)", "python3")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip().startswith("make ")]
    # the suite; a room without internet; the notebooks in a real browser; the same suite on the SDAA floor; the
    # emulated card on every stack
    assert ci == ["make test", "make test-offline", "make test-browser", "make test-floor",
                  "make test-emulator-stacks"], ci


def test_make_setup_installs_jupyterlab_and_make_lab_installs_nothing():
    """A workshop room may be offline when `make lab` runs: everything it needs comes with `make setup`."""
    text = (ROOT / "Makefile").read_text()
    setup = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", text, re.M).group(1)
    assert re.search(r"\$\(PIP\) install .*-e \"\.\[[^]]*\blab\b", setup), setup
    assert re.search(r"^PIP = \$\(PY\) -m pip$", text, re.M)  # (online; WHEELHOUSE= swaps in tools/wheelhouse.py)
    lab = re.search(r"^lab:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    assert "pip" not in lab and "--allow-root" in text and "lab-settings" in lab, lab
    overrides = json.loads((ROOT / "lab-settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"] == {"checkForUpdates": False, "fetchNews": "false"}


def test_make_bench_runs_scripts_that_exist():
    """`make bench` calls bench/run_all.py, which names its scripts: every one of them must be there."""
    bench = re.search(r"^bench:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    script = ROOT / bench.split()[-1]
    assert script.is_file(), bench
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--only" in r.stdout, r.stderr
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import run_all
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for name, (file, _, _) in run_all.BENCHMARKS.items():
        assert (ROOT / "bench" / file).is_file(), (name, file)


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "the workshop notebooks are missing"
    for path in notebooks:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} has outputs"


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
