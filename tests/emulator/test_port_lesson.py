"""Notebook 3 on the card: the hand port against the CPU run (kit compare), and cuda_migrate against the hand port.

The scripts are the shipped ones (kit/assets/port), run as the notebook runs them (kit.workshop.port.run_script): a
subprocess each, with TORCH_SDAA_AUTOLOAD=cuda_migrate for the unchanged CUDA script.
"""

from __future__ import annotations

import pytest

from kit.workshop import port
from tests.helpers import assert_ranks_log_one_mean, grad_scaler_toy

STEPS = 12


@pytest.fixture(scope="module")
def runs(digits, tmp_path_factory):
    """The CPU reference, the hand port on the card and the CUDA script under cuda_migrate, 12 steps each."""
    out = tmp_path_factory.mktemp("port")
    data = ["--data-path", str(digits), "--steps", str(STEPS)]
    done = {"cpu": port.run_script(port.script("cpu"), *data, log=out / "cpu.log"),
            "sdaa": port.run_script(port.script("sdaa"), *data, "--device", "sdaa", log=out / "sdaa.log"),
            "migrated": port.run_script(port.script("cuda"), *data, log=out / "migrated.log", cuda_migrate=True)}
    for name, run in done.items():
        assert run.returncode == 0, (name, run.stderr[-8:])
        assert len(run.losses()) == STEPS, (name, run.stdout[-500:])
    return done


def test_the_card_is_found_for_the_lesson():
    assert port.card("auto") == "sdaa" and port.card("sdaa") == "sdaa" and port.card("cpu") is None


def test_the_hand_port_passes_kit_compare_against_the_cpu_run(runs, tmp_path):
    code, report = port.kit_compare(runs["cpu"].log, runs["sdaa"].log, "--plot", tmp_path / "p.png")
    assert code == 0, report
    assert "(tcappdll, 12 points, steps 0..11)" in report and "verdict: PASS (strict rule)" in report
    assert (tmp_path / "p.png").stat().st_size > 0
    # float16 matrix products on the card against fp32 on the CPU: close, not equal
    cpu, card = runs["cpu"].losses(), runs["sdaa"].losses()
    assert cpu != card and max(abs(a - b) / a for a, b in zip(cpu, card)) < 0.01


def test_cuda_migrate_runs_the_cuda_script_to_the_hand_ports_very_losses(runs):
    assert runs["migrated"].shown.startswith("TORCH_SDAA_AUTOLOAD=cuda_migrate python train_cuda.py")
    assert runs["migrated"].losses() == runs["sdaa"].losses()
    assert runs["migrated"].stderr == [] and runs["sdaa"].stderr == []  # nothing on stderr a learner must read


def test_a_lacking_operator_fails_then_falls_back_with_one_warning_to_the_same_losses(digits, runs):
    short = ["--data-path", str(digits), "--steps", "2"]
    lacking = {"SDAA_EMULATOR_LACKING_OPS": "aten::gelu"}
    failed = port.run_script(port.script("sdaa"), *short, env=lacking)
    assert failed.returncode != 0
    assert failed.error.startswith("RuntimeError: The operator 'aten::gelu") and "not implemented" in failed.error
    fallback = port.run_script(port.script("sdaa"), *short, env={**lacking, "TORCH_SDAA_RUNTIME_AUTOFALLBACK": "1"})
    assert fallback.returncode == 0, fallback.stderr
    warnings = [line for line in fallback.stderr if "falls back to the CPU" in line]
    assert len(warnings) == 1 and "Triggered internally" not in warnings[0] and len(fallback.stderr) == 1
    assert fallback.losses() == runs["sdaa"].losses()[:2]


@pytest.mark.slow
def test_torchrun_over_tccl_two_cards_log_one_mean(digits):
    run = port.run_script(port.script("sdaa"), "--data-path", str(digits), "--steps", "3", nproc=2)
    assert run.returncode == 0, run.stderr[-8:]
    assert run.stdout.count("world size 2, batch 64 per card, 128 global, lr 0.002") == 2
    assert_ranks_log_one_mean(run.stdout, steps=3)
    assert run.stderr == []  # DDP's "Time stats ... only for CPU and CUDA" note and torchrun's banner set aside


def test_the_grad_scaler_on_the_card_skips_the_overflowing_step():
    seen = grad_scaler_toy(port.half_precision("sdaa"), steps=3, device="sdaa")
    assert seen == [(False, 1024.0), (True, 512.0), (False, 512.0)]
