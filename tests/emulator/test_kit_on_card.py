"""The kit on the emulated card: kit train (fp32 and AMP), resume across devices, kit align, bad input.

What "bit for bit" means here: the card runs the CPU's kernels on the same bytes, so a run on ``sdaa`` is the
CPU's run, with one named exception. On every torch the kit supports, scaled-dot-product attention on a
backend outside torch's tree takes torch's math path, while the CPU takes its fused kernel; CaiT's class
attention uses SDPA (timm's fused attention), so its losses differ in the last bits. With timm's fused
attention switched off (TIMM_FUSED_ATTN=0) both run the same explicit attention, and CaiT is bit for bit
too — the test below shows both, which is the proof of that cause.
"""

from __future__ import annotations

import json

import pytest
import torch
from card_helpers import records, run_kit, stderr_lines, step_losses

pytestmark = pytest.mark.slow

STEPS = "30"


def _train(digits, out, device, recipe="workshop_hivit", *extra, env=None):
    proc = run_kit("train", "--recipe", recipe, "--data", str(digits), "--out", str(out), "--device", device,
               "--max-steps", STEPS, *extra, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return step_losses(out)


def test_hivit_on_the_card_is_the_cpu_run_bit_for_bit(digits, tmp_path):
    cpu = _train(digits, tmp_path / "cpu", "cpu")
    card = _train(digits, tmp_path / "sdaa", "sdaa")
    assert len(card) == 30 and card == cpu
    config = json.loads((tmp_path / "sdaa" / "config.json").read_text())
    assert config["environment"]["device"]["emulated"] is True
    log = (tmp_path / "sdaa" / "train.log").read_text()
    assert "EMULATED SDAA card" in log and "never a measurement of the card" in log


def test_cait_on_the_card_differs_only_by_its_fused_attention(digits, tmp_path):
    cpu = _train(digits, tmp_path / "cpu", "cpu", "workshop_cait")
    card = _train(digits, tmp_path / "sdaa", "sdaa", "workshop_cait")
    worst = max(abs(a - b) / abs(a) for a, b in zip(cpu, card))
    assert len(card) == 30 and worst <= 1e-5  # measured 1.1e-7 (torch 2.14); SDPA math vs the CPU's fused kernel
    plain = {"TIMM_FUSED_ATTN": "0"}
    assert _train(digits, tmp_path / "sdaa0", "sdaa", "workshop_cait", env=plain) == _train(
        digits, tmp_path / "cpu0", "cpu", "workshop_cait", env=plain)


class _InfGrad(torch.autograd.Function):
    """Identity forward; an infinite gradient backward: one step's gradients overflow, the loss stays finite."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def test_amp_on_the_card_scales_skips_an_overflowing_step_and_passes_kit_compare(digits, tmp_path, monkeypatch):
    fp32 = tmp_path / "cpu"
    _train(digits, fp32, "cpu")
    import kit.train.loop
    from kit.cli import main

    real_step, calls = kit.train.loop.train_step, []

    def step_with_overflow_at_7(parts, images, labels, dev):
        calls.append(1)
        if len(calls) - 1 == 7:
            criterion = parts.criterion
            parts.criterion = lambda out, target: _InfGrad.apply(criterion(out, target))
            try:
                return real_step(parts, images, labels, dev)
            finally:
                parts.criterion = criterion
        return real_step(parts, images, labels, dev)

    monkeypatch.setattr(kit.train.loop, "train_step", step_with_overflow_at_7)
    amp = tmp_path / "amp"
    assert main(["train", "--recipe", "workshop_hivit", "--data", str(digits), "--out", str(amp), "--device", "sdaa",
                 "--max-steps", STEPS, "--amp"]) == 0
    assert "autocast fp16 + grad scaler" in (amp / "train.log").read_text()
    steps = [r for r in records(amp) if "loss" in r and r.get("split") is None]
    assert [r["step"] for r in steps if r.get("skipped_step")] == [7]  # exactly that step
    assert len(steps) == 30  # and the run went on
    compare = run_kit("compare", str(fp32 / "metrics.jsonl"), str(amp / "metrics.jsonl"))
    assert compare.returncode == 0, compare.stdout + compare.stderr


@pytest.mark.parametrize("first, second", [("sdaa", "cpu"), ("cpu", "sdaa")])
def test_a_checkpoint_from_one_device_resumes_on_the_other(digits, tmp_path, first, second):
    whole = _train(digits, tmp_path / "whole", "cpu", "workshop_hivit", "--max-steps", "20")
    run = tmp_path / "run"
    proc = run_kit("train", "--recipe", "workshop_hivit", "--data", str(digits), "--out", str(run), "--device", first,
               "--max-steps", "12")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_kit("train", "--recipe", "workshop_hivit", "--data", str(digits), "--out", str(run), "--device", second,
               "--max-steps", "20", "--resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert step_losses(run) == whole  # the continuation the kit's resume promises: the uninterrupted run


def _dump(digits, out, device, *extra):
    proc = run_kit("align", "dump", "--model", "hivit_workshop_32", "--data", str(digits), "--out", str(out),
               "--device", device, *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_kit_align_sees_the_card_aligned_in_fp32_and_within_tolerance_with_amp(digits, tmp_path):
    _dump(digits, tmp_path / "cpu", "cpu")
    _dump(digits, tmp_path / "sdaa", "sdaa")
    _dump(digits, tmp_path / "sdaa_amp", "sdaa", "--amp")
    fp32 = run_kit("align", "compare", str(tmp_path / "cpu"), str(tmp_path / "sdaa"), "--json")
    assert fp32.returncode == 0, fp32.stdout
    amp = run_kit("align", "compare", str(tmp_path / "cpu"), str(tmp_path / "sdaa_amp"), "--json")
    assert amp.returncode == 0, amp.stdout


def test_a_card_that_is_not_there_is_one_line_exit_2_and_nothing_written(digits, tmp_path):
    out = tmp_path / "run"
    proc = run_kit("train", "--recipe", "workshop_hivit", "--data", str(digits), "--out", str(out),
                   "--device", "sdaa:5")
    assert proc.returncode == 2 and not out.exists()
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "sdaa:5" in lines[0] and "2 sdaa device(s)" in lines[0]


def test_a_lacking_operator_without_fallback_is_one_line_exit_2(digits, tmp_path):
    env = {"SDAA_EMULATOR_LACKING_OPS": "aten::native_layer_norm"}
    proc = run_kit("train", "--recipe", "workshop_hivit", "--data", str(digits), "--out", str(tmp_path / "run"),
               "--device", "sdaa", "--max-steps", "2", env=env)
    lines = stderr_lines(proc)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "'aten::native_layer_norm'" in lines[0] and "TORCH_SDAA_RUNTIME_AUTOFALLBACK" in lines[0]
    fallback = run_kit("train", "--recipe", "workshop_hivit", "--data", str(digits), "--out", str(tmp_path / "run2"),
                   "--device", "sdaa", "--max-steps", "2", env={**env, "TORCH_SDAA_RUNTIME_AUTOFALLBACK": "1"})
    assert fallback.returncode == 0 and fallback.stderr.count("falls back to the CPU") == 1


def test_kit_devices_says_emulated_and_auto_never_picks_it():
    proc = run_kit("devices")
    assert proc.returncode == 0
    assert "EMULATED" in proc.stdout and "auto picks" in proc.stdout
    picked = next(line for line in proc.stdout.splitlines() if line.startswith("auto picks"))
    assert "sdaa" not in picked
