"""tools/wheelhouse.py: the offline install's refusals, each one line with exit code 2 (the whole flow, a fresh
clone set up and run from a wheelhouse in a network namespace, is `make test-offline`)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "wheelhouse.py"


def _wheelhouse(folder: Path, **changes) -> Path:
    folder.mkdir()
    manifest = {"python": "x", "python_tag": f"cp{sys.version_info.major}{sys.version_info.minor}",
                "platform": sysconfig.get_platform(), "torch": None, "torch_in_wheelhouse": True, "wheels": []}
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _pip(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "pip", str(folder), "--", *args], capture_output=True,
                          text=True, timeout=300)


def test_a_missing_wheel_is_named_in_one_line(tmp_path):
    done = _pip(_wheelhouse(tmp_path / "house"), "install", "--dry-run", "--target", str(tmp_path / "t"), "six")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"wheelhouse: error: the wheelhouse {tmp_path / 'house'} has no wheel for six: make it again with "
        f"`make wheelhouse WHEELHOUSE={tmp_path / 'house'}` (same Python, same extras) where there is internet"]


def test_the_machines_own_package_sources_do_not_stand_in(tmp_path, monkeypatch):
    """A find-links or index in the environment or pip.conf would hide a missing wheel: the tool ignores them."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(other))
    monkeypatch.setenv("PIP_INDEX_URL", "file:///nonexistent")
    done = _pip(_wheelhouse(tmp_path / "house"), "config", "list")
    assert done.returncode == 0
    assert str(other) not in done.stdout and "nonexistent" not in done.stdout


def test_a_wheelhouse_for_another_python_is_refused_before_pip_runs(tmp_path):
    done = _pip(_wheelhouse(tmp_path / "house", python_tag="cp27"), "install", "six")
    assert done.returncode == 2
    assert "was made for cp27" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_unfinished_wheelhouse_is_refused(tmp_path):
    (tmp_path / "house").mkdir()
    done = _pip(tmp_path / "house", "install", "six")
    assert done.returncode == 2
    assert "is not a finished wheelhouse (no manifest.json)" in done.stderr
