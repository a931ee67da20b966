"""``kit devices`` (kit.device.command): the table of what this machine has and what ``auto`` picks."""

from __future__ import annotations

import re

import pytest
import torch

from kit.cli import main
from kit.device import shim


def table(capsys, *args: str) -> dict[str, str]:
    """``kit devices ARGS`` run (exit 0), its rows as {label: value}: a label and its value are two spaces apart."""
    assert main(["devices", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    return dict(re.split(r" {2,}", line, maxsplit=1) for line in lines)


@pytest.fixture
def cpu_only(monkeypatch):
    """A machine with no CUDA and no MPS (no torch_sdaa is installed here, and auto never picks an emulated one)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(shim, "mps_available", lambda: False)


def test_on_a_cpu_only_machine_auto_picks_the_cpu_and_says_why(capsys, cpu_only):
    rows = table(capsys)
    assert rows["torch"] == torch.__version__
    assert rows["CUDA"] == "not available" and rows["MPS"] == "not available"
    assert rows["auto picks"] == "cpu" and "no SDAA, CUDA or MPS" in rows["why"]
    assert rows["distributed backend"] == "gloo"
    assert rows["--amp auto"] == shim.resolve("cpu").amp_policy("auto").describe()


def test_the_table_says_what_another_amp_would_do(capsys, cpu_only):
    rows = table(capsys, "--amp", "none")
    assert "--amp auto" not in rows and rows["--amp none"] == shim.resolve("cpu").amp_policy("none").describe()
    assert rows["--amp none"] != shim.resolve("cpu").amp_policy("bf16").describe()  # the row follows the flag


def test_auto_picks_what_the_shim_resolves(capsys):
    """Whatever this machine has (a GPU runner too), the table shows the shim's own choice."""
    rows = table(capsys)
    dev = shim.resolve("auto")
    assert rows["auto picks"] == dev.spec and rows["hardware"] == dev.name() and rows["why"] == dev.reason


def test_an_unknown_amp_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["devices", "--amp", "fp8"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and "fp8" in err
