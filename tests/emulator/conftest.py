"""Tests of the emulated SDAA card (``make test-emulator``): skipped where it is not installed.

Every test here runs real operators on a device whose type is ``sdaa``, through PyTorch's dispatcher, as
they would run with Tecorigin's plugin; the kit's CLI runs in subprocesses, as a learner runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    import torch_sdaa  # noqa: F401

    EMULATED = bool(getattr(torch_sdaa, "EMULATED", False))
except ImportError as e:  # not installed (make setup-emulator), or refused
    EMULATED, WHY = False, str(e)
else:
    WHY = "a real torch_sdaa is installed here: these tests are for the emulated card"

collect_ignore_glob = [] if EMULATED else ["test_*.py"]


def pytest_report_header(config):
    return "emulated SDAA card: " + ("present" if EMULATED else f"absent, tests/emulator skipped ({WHY})")


@pytest.fixture(scope="session")
def digits(digits_dir) -> Path:
    return digits_dir
