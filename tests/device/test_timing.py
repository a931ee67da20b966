"""kit.device.timing: the measurements run and give real numbers (how fast is never asserted: machines differ)."""

from __future__ import annotations

import math
import time

import pytest
import timm
import torch
import torch.utils.benchmark

import kit.models  # noqa: F401  (registers the kit's models in timm)
from kit import anatomy
from kit.device import timing
from kit.device.shim import resolve


def test_matmul_flops_is_a_positive_finite_rate(monkeypatch):
    threads = torch.get_num_threads()
    seen = []
    real_timer = torch.utils.benchmark.Timer

    def recording_timer(*args, **kwargs):
        seen.append(kwargs["num_threads"])
        return real_timer(*args, **kwargs)

    monkeypatch.setattr(torch.utils.benchmark, "Timer", recording_timer)
    for device in (None, resolve("cpu")):
        flops = timing.measure_matmul_flops(device, torch.float32, size=64, min_run_time=0.01)
        assert flops > 0 and math.isfinite(flops)
    assert seen == [threads, threads]  # torch's thread count, not the Timer's default of one
    assert torch.get_num_threads() == threads


def test_measure_waits_for_the_device_before_reading_the_clock():
    class Card:
        syncs = 0

        def synchronize(self):
            Card.syncs += 1

    m = timing.measure(lambda: None, Card(), min_run_time=0.001)
    assert m.times and all(t > 0 for t in m.times)
    assert Card.syncs >= 2 * len(m.times)  # before and after every timed block


def test_measure_warms_up_so_the_block_size_comes_from_warm_calls():
    calls = []

    def first_call_cold():  # as a first matmul is: thread pool, kernel choice, fresh memory
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.05)

    cold = timing.measure(first_call_cold, min_run_time=0.01, warmup=0)
    assert cold.number_per_run == 1  # the Timer's own warm-up stopped at the cold call and sized blocks by it
    calls.clear()
    warm = timing.measure(first_call_cold, min_run_time=0.01, warmup=0.02)
    assert warm.number_per_run > 1 and max(warm.times) < 0.01
    assert timing.warm_up(lambda: None, None, 0.0) == 1  # at least one call, however short the warm-up


def test_masked_forward_times_for_each_ratio():
    torch.manual_seed(0)
    model = timm.create_model("hivit_workshop_32").train()
    times = anatomy.masked_forward_times(model, mask_ratios=(0.0, 0.75), batch=2, min_run_time=0.01)
    assert set(times) == {0.0, 0.75}
    assert all(t > 0 and math.isfinite(t) for t in times.values())
    assert model.training  # the model's mode is put back
    with pytest.raises(ValueError, match="mask_ratio"):
        anatomy.masked_forward_times(model, mask_ratios=(1.0,), batch=2, min_run_time=0.01)


def test_a_measurement_prints_nothing_on_stderr():
    """torch.utils.benchmark imports torch's C++-extension builder, which logs "No CUDA runtime is found" where a
    CUDA toolkit is installed but no GPU answers (PyPI's torch on most Linux laptops): the kit silences it, since
    a notebook shows it as a pink stderr box and the kit compiles nothing. (Where no toolkit is installed the
    line never appears, and this test passes either way.)"""
    import subprocess
    import sys

    code = "from kit.device import timing; timing.measure(lambda: None, min_run_time=0.01, warmup=0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "No CUDA runtime" not in done.stderr and "cpp_extension" not in done.stderr, done.stderr
