"""The device shim: CPU for real, SDAA and CUDA through stand-in modules that record every call."""

from __future__ import annotations

import contextlib
import random
import sys
import types

import numpy as np
import pytest
import torch

from kit.core import seeding
from kit.core.errors import UserError
from kit.device import cpuinfo, timing
from kit.device import shim as device_mod
from kit.device.shim import AmpPolicy, resolve


class Recorder:
    """A stand-in for ``torch.sdaa`` / ``torch.cuda``: answers like a one-card device, logs each call."""

    def __init__(self, count: int = 2, bf16: bool = True):
        self.calls: list[tuple] = []
        self.count = count
        self.bf16 = bf16
        outer = self

        class _Autocast(contextlib.AbstractContextManager):
            def __init__(self, *args, **kwargs):
                outer.calls.append(("amp.autocast", args, kwargs))

            def __exit__(self, *exc):
                return None

        class _Scaler:
            def __init__(self, *args, **kwargs):
                outer.calls.append(("amp.GradScaler", args, kwargs))

        self.amp = types.SimpleNamespace(autocast=_Autocast, GradScaler=_Scaler)

    def _log(self, name, *args):
        self.calls.append((name, args, {}))

    def is_available(self):
        return True

    def device_count(self):
        return self.count

    def set_device(self, i):
        self._log("set_device", i)

    def synchronize(self, *args):
        self._log("synchronize", *args)

    def manual_seed_all(self, seed):
        self._log("manual_seed_all", seed)

    def get_device_name(self, i=0):
        return "TECO_AICARD_01"

    def get_device_properties(self, i=0):
        return types.SimpleNamespace(total_memory=15296 * 2**20)

    def is_bf16_supported(self):
        return self.bf16

    def get_rng_state_all(self):
        return [torch.tensor([1, 2, 3], dtype=torch.uint8)]

    def set_rng_state_all(self, states):
        self._log("set_rng_state_all", states)

    def names(self):
        return [c[0] for c in self.calls]


@pytest.fixture
def fake_sdaa(monkeypatch):
    """Inject a ``torch_sdaa`` module whose import registers ``torch.sdaa``, as the real one does."""
    rec = Recorder()
    module = types.ModuleType("torch_sdaa")
    module.__version__ = "2.2.0-fake"
    monkeypatch.setitem(sys.modules, "torch_sdaa", module)
    monkeypatch.setattr(torch, "sdaa", rec, raising=False)
    return rec


@pytest.fixture
def no_sdaa(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_sdaa", None)  # makes `import torch_sdaa` raise ImportError
    monkeypatch.delattr(torch, "sdaa", raising=False)


def test_auto_without_accelerators_is_cpu(no_sdaa):
    dev = resolve("auto")
    assert dev.type == "cpu" and dev.module is None
    assert "no SDAA" in dev.reason
    assert dev.dist_backend == "gloo"
    assert dev.torch_device == torch.device("cpu")


def test_auto_prefers_sdaa(fake_sdaa):
    dev = resolve("auto")
    assert dev.type == "sdaa" and dev.module is fake_sdaa
    assert dev.dist_backend == "tccl"
    assert "torch_sdaa" in dev.reason


def test_explicit_sdaa_index_checked(fake_sdaa):
    assert resolve("sdaa:1").index == 1
    with pytest.raises(UserError, match="only 2 sdaa"):
        resolve("sdaa:5")


def test_sdaa_missing_says_what_to_do(no_sdaa):
    with pytest.raises(UserError) as e:
        resolve("sdaa")
    msg = str(e.value)
    assert "torch_sdaa" in msg and "TORCH_SDAA_AUTOLOAD=cuda_migrate" in msg and "KIT_PYTHON" in msg


def test_cuda_missing_is_an_error(no_sdaa):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="CUDA"):
        resolve("cuda")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "sdaa1", ""])
def test_bad_spec(spec, no_sdaa):
    if spec == "":
        assert resolve(spec).type == "cpu"  # empty means auto
        return
    with pytest.raises(UserError, match="unknown device"):
        resolve(spec)


def test_sdaa_amp_uses_torch_sdaa_amp(fake_sdaa):
    dev = resolve("sdaa")
    policy = dev.amp_policy("auto")
    assert policy.enabled and policy.use_scaler
    with dev.autocast(policy):
        pass
    scaler = dev.grad_scaler(policy)
    assert scaler is not None
    assert fake_sdaa.names() == ["amp.autocast", "amp.GradScaler"]
    # the ports call autocast() with no device_type or dtype argument
    assert fake_sdaa.calls[0][1:] == ((), {})


def test_sdaa_set_device_sync_seed_and_rng(fake_sdaa):
    dev = resolve("sdaa").set_device(1)
    assert dev.spec == "sdaa:1"
    dev.synchronize()
    seeding.seed_all(7, dev)
    state = seeding.rng_state(dev)
    seeding.set_rng_state(state, dev)
    assert fake_sdaa.names() == ["set_device", "synchronize", "manual_seed_all", "set_rng_state_all"]
    assert fake_sdaa.calls[0][1] == (1,) and fake_sdaa.calls[2][1] == (7,)
    assert dev.name() == "TECO_AICARD_01"


def test_no_amp_means_no_autocast_no_scaler(fake_sdaa):
    dev = resolve("sdaa")
    policy = dev.amp_policy("none")
    assert not policy.enabled
    with dev.autocast(policy):
        pass
    assert dev.grad_scaler(policy) is None
    assert fake_sdaa.calls == []


def _fake_cuda(monkeypatch, bf16: bool) -> tuple[Recorder, list]:
    rec = Recorder(count=1, bf16=bf16)
    autocasts: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def fake_autocast(device_type, dtype=None):
        autocasts.append((device_type, dtype))
        return contextlib.nullcontext()

    monkeypatch.setattr(torch, "autocast", fake_autocast)
    monkeypatch.setattr(device_mod, "_check_available", lambda kind, index: rec if kind == "cuda" else None)
    return rec, autocasts


@pytest.mark.parametrize(
    "amp,bf16,dtype,scaler",
    [("auto", True, torch.bfloat16, False), ("auto", False, torch.float16, True),
     ("fp16", True, torch.float16, True), ("bf16", True, torch.bfloat16, False)],
)
def test_cuda_amp_policy(monkeypatch, no_sdaa, amp, bf16, dtype, scaler):
    rec, autocasts = _fake_cuda(monkeypatch, bf16)
    dev = resolve("cuda")
    assert dev.dist_backend == "nccl"
    policy = dev.amp_policy(amp)
    assert policy.enabled and policy.dtype == dtype and policy.use_scaler == scaler
    with dev.autocast(policy):
        pass
    assert autocasts == [("cuda", dtype)]
    assert (dev.grad_scaler(policy) is not None) == scaler


def test_cpu_amp_off_without_native_bf16_and_says_why(monkeypatch, no_sdaa):
    monkeypatch.setattr(cpuinfo, "has_native_bf16", lambda: False)
    monkeypatch.setattr(timing, "measure_cpu_bf16_ratio", lambda: 0.02)
    policy = resolve("cpu").amp_policy("auto")
    assert not policy.enabled
    assert "no native bf16" in policy.note and "2.0 %" in policy.note
    assert "fp32" in policy.describe()


def test_cpu_amp_on_with_native_bf16(monkeypatch, no_sdaa):
    monkeypatch.setattr(cpuinfo, "has_native_bf16", lambda: True)
    dev = resolve("cpu")
    policy = dev.amp_policy(True)
    assert policy == AmpPolicy(True, torch.bfloat16, False)
    with dev.autocast(policy):
        y = torch.ones(4, 4) @ torch.ones(4, 4)
    assert y.dtype == torch.bfloat16
    assert dev.grad_scaler(policy) is None


def test_bad_amp_value(no_sdaa):
    with pytest.raises(UserError, match="--amp"):
        resolve("cpu").amp_policy("fp8")


def test_seed_and_rng_round_trip_through_weights_only_checkpoint(tmp_path, no_sdaa):
    dev = resolve("cpu")
    seeding.seed_all(1234, dev)
    state = seeding.rng_state(dev)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.save({"rng": state}, tmp_path / "rng.pth")
    loaded = torch.load(tmp_path / "rng.pth", weights_only=True)["rng"]
    seeding.seed_all(999, dev)  # disturb everything
    seeding.set_rng_state(loaded, dev)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_cpu_describe(no_sdaa):
    dev = resolve("cpu")
    info = dev.describe()
    assert info["type"] == "cpu" and info["dist_backend"] == "gloo" and info["torch"] == torch.__version__


def test_kit_devices_cli(capsys, no_sdaa):
    from kit.cli import main

    assert main(["devices", "--amp", "none"]) == 0
    out = capsys.readouterr().out
    assert "auto picks" in out and "cpu" in out and "gloo" in out


@pytest.fixture
def fake_cpuinfo(monkeypatch, tmp_path):
    """A file the test writes, read wherever the kit opens /proc/cpuinfo (absent until written)."""
    import builtins

    path = tmp_path / "cpuinfo"
    real_open = builtins.open

    def fake_open(file, *a, **k):
        return real_open(path if file == "/proc/cpuinfo" else file, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    return path


def test_native_bf16_flag_detection(fake_cpuinfo):
    assert not cpuinfo.has_native_bf16()  # no /proc/cpuinfo: the cautious answer
    fake_cpuinfo.write_text("flags\t: fpu sse avx2 avx512f\n")
    assert not cpuinfo.has_native_bf16()
    fake_cpuinfo.write_text("flags\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert cpuinfo.has_native_bf16()
    assert cpuinfo.bf16_flags() == ["avx512_bf16"]
    fake_cpuinfo.write_text("flags\t: amx_bf16 avx512_bf16 amx_tile\nflags\t: amx_bf16 avx512_bf16 amx_tile\n")
    assert cpuinfo.bf16_flags() == ["avx512_bf16", "amx_bf16"]  # once each, in a fixed order


def test_cpu_model_name_read_from_cpuinfo(fake_cpuinfo, no_sdaa):
    assert cpuinfo.model_name()  # no /proc/cpuinfo: platform's name, or "CPU"
    fake_cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\nflags\t: fpu\n")
    assert cpuinfo.model_name() == "Example CPU @ 2.00GHz"
    assert resolve("cpu").name() == "Example CPU @ 2.00GHz"


def test_fused_optimizer_is_probed_on_cpu_and_never_claimed_for_sdaa(monkeypatch, fake_sdaa):
    monkeypatch.setattr(device_mod, "_FUSED_OPTIMIZER", {})
    cpu = resolve("cpu")
    expected = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4)  # fused CPU kernels came in 2.4
    assert cpu.fused_optimizer() is expected
    assert device_mod._FUSED_OPTIMIZER == {"cpu": expected}  # probed once, then remembered
    assert resolve("sdaa").fused_optimizer() is False  # torch_sdaa documents no fused kernels


def test_fused_optimizer_false_when_the_probe_step_fails(monkeypatch, no_sdaa):
    monkeypatch.setattr(device_mod, "_FUSED_OPTIMIZER", {})

    class NoFused(torch.optim.AdamW):
        def __init__(self, params, **kw):
            if kw.get("fused"):
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors "
                                   "of supported devices")
            super().__init__(params, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", NoFused)
    assert resolve("cpu").fused_optimizer() is False


# -- an emulated card (vitkit's emulator/): usable when asked for, never chosen by auto, always said ---------


@pytest.fixture
def emulated_sdaa(fake_sdaa):
    fake_sdaa.EMULATED = True  # what the emulator's torch.sdaa carries and Tecorigin's does not
    return fake_sdaa


def test_auto_never_picks_an_emulated_card_but_sdaa_gets_it(emulated_sdaa, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "mps_available", lambda: False)
    assert device_mod.available_types() == ["cpu", "sdaa"]
    auto = resolve("auto")
    assert auto.type == "cpu" and "never picked by auto" in auto.reason
    card = resolve("sdaa")
    assert card.emulated and card.describe()["emulated"] is True
    assert not resolve("cpu").emulated


def test_a_real_card_is_not_emulated(fake_sdaa):
    dev = resolve("auto")
    assert dev.type == "sdaa" and not dev.emulated and dev.describe()["emulated"] is False


def test_amp_on_an_emulated_card_names_its_half_type(emulated_sdaa):
    policy = resolve("sdaa").amp_policy("auto")
    assert policy.enabled and policy.use_scaler and policy.dtype == torch.float16
    assert policy.describe().startswith("autocast fp16 + grad scaler") and "emulated" in policy.describe()


def test_a_lacking_operator_error_becomes_its_first_line():
    error = RuntimeError("The operator 'aten::median' is not implemented on the SDAA device (emulated card: ...). "
                         "Set TORCH_SDAA_RUNTIME_AUTOFALLBACK=1 to run it on the CPU.\nException raised from ...")
    assert device_mod.lacking_operator(error).startswith("The operator 'aten::median'")
    assert "\n" not in device_mod.lacking_operator(error)
    assert device_mod.lacking_operator(RuntimeError("shape mismatch")) is None
