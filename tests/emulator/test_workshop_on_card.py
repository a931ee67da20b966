"""The whole workshop on the emulated card: all seven notebooks under ``kit workshop --device sdaa`` (quick mode).

The make-run route (papermill, injected parameters) with the card asked for; notebook 0 shows the torch.sdaa
surface on it, and the summary says the card is emulated. The longest test here (a few minutes): `make
test-emulator-stacks` runs it on the current torch only (`-m "not workshop"` on the floors), whose notebooks run on
the floors in `make test-floor` anyway.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from card_helpers import run_kit

pytestmark = [pytest.mark.slow, pytest.mark.workshop]


def test_all_seven_notebooks_run_on_the_card(digits, tmp_path):
    out = tmp_path / "workshop"
    proc = run_kit("workshop", "--out", str(out), "--quick", "--device", "sdaa", "--data", str(digits), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"].startswith("sdaa") and summary["device_emulated"] is True
    assert "EMULATED SDAA card" in (out / "summary.md").read_text()
    assert len(summary["notebooks"]) == 7
    nb0 = nbformat.read(out / "notebooks" / "00_setup_and_devices.ipynb", as_version=4)
    shown = "".join(o.get("text", "") for c in nb0.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "tensor on sdaa:0" in shown and "torch.float16" in shown and "emulated card (CPU numbers)" in shown
    for model in summary["models"]:
        log = (Path(model["run_dir"]) / "train.log").read_text()
        assert "device: sdaa" in log and "EMULATED SDAA card" in log
