"""The device shim: one object that hides what differs between SDAA, CUDA, MPS and the CPU.

The trainer and the notebooks never branch on device names; they ask a :class:`Device` for an
autocast context, a grad scaler (or ``None``), the distributed backend, the card's memory size and so on.
Its neighbours: :mod:`kit.device.cpuinfo` reads the CPU's flags, :mod:`kit.device.timing` measures speed, and
:mod:`kit.device.command` is the ``kit devices`` command that prints what the shim sees.

Why a shim and not ``torch.device`` alone: the Tecorigin SDAA card is reached through the
``torch_sdaa`` extension, which registers ``torch.sdaa`` (a twin of ``torch.cuda``) and the
device strings ``sdaa`` / ``sdaa:N``. Its mixed precision lives in ``torch.sdaa.amp``
(``autocast()`` and ``GradScaler()``, as the ModelZoo ports use them), its collective library is
TCCL (backend ``"tccl"``), and whether ``torch.autocast(device_type="sdaa")`` works is not
documented — so the shim uses only the calls the ports are known to use.

Honesty rules: a device that is asked for and not there is an error that says what to install,
never a silent fall-back; mixed precision that would make training slower (bf16 on a CPU without
native bf16) is switched off *with a message that says so*, never silently. The kit's own emulated card
(``emulator/``, ``make setup-emulator``) is a real ``sdaa`` device to torch, but ``auto`` never picks it,
and every description of it says "emulated": its numbers are CPU numbers, never the card's.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from typing import Any, ContextManager, Optional

import torch

from kit.core.errors import UserError
from kit.device import cpuinfo, timing
from kit.device.choices import AMP_CHOICES, DEVICE_SPEC

__all__ = ["SDAA_HELP", "DIST_BACKENDS", "AMP_CHOICES", "AmpPolicy", "Device", "sdaa_module", "sdaa_emulated",
           "mps_available", "available_types", "resolve", "lacking_operator"]

#: What to tell a user who asks for SDAA where torch_sdaa cannot be imported.
SDAA_HELP = (
    "the SDAA device needs the torch_sdaa extension, which could not be imported here. "
    "Activate the vendor environment that provides it (for example `conda activate torch_env` in the "
    "Tecorigin PyTorch image), make sure its libraries are found "
    "(LD_LIBRARY_PATH=.../site-packages/torch_sdaa/lib), and consider "
    "TORCH_SDAA_AUTOLOAD=cuda_migrate so CUDA-written code runs unchanged. "
    "Install vitkit into that environment with `KIT_PYTHON=$(which python) make setup`, "
    "which keeps its torch."
)

DIST_BACKENDS = {"sdaa": "tccl", "cuda": "nccl", "mps": "gloo", "cpu": "gloo"}


# --------------------------------------------------------------------------------------------
# What is there
# --------------------------------------------------------------------------------------------


def _import_torch_sdaa() -> Any:
    """Import torch_sdaa (which registers ``torch.sdaa``); return ``torch.sdaa`` or raise ImportError."""
    importlib.import_module("torch_sdaa")
    sdaa = getattr(torch, "sdaa", None)
    if sdaa is None:
        raise ImportError("torch_sdaa imported but did not register torch.sdaa")
    return sdaa


def sdaa_module() -> Optional[Any]:
    """``torch.sdaa`` when torch_sdaa is importable and reports a card, else ``None``."""
    try:
        sdaa = _import_torch_sdaa()
    except Exception:
        return None
    try:
        return sdaa if sdaa.is_available() else None
    except Exception:
        return None


def sdaa_emulated(module: Any = None) -> bool:
    """Whether ``torch.sdaa`` (or ``module``) is the kit's emulated card rather than Tecorigin's."""
    module = module if module is not None else getattr(torch, "sdaa", None)
    return bool(getattr(module, "EMULATED", False))


def lacking_operator(e: BaseException) -> Optional[str]:
    """The one line to show when an operator the card lacks was called without the CPU fallback, else None."""
    text = str(e)
    if "not implemented on the SDAA device" not in text:
        return None
    return text.strip().splitlines()[0]


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_types() -> list[str]:
    """Device types usable here, in the order ``auto`` prefers them (an emulated card is listed, never preferred)."""
    found = []
    sdaa = sdaa_module()
    emulated = sdaa is not None and sdaa_emulated(sdaa)
    if sdaa is not None and not emulated:
        found.append("sdaa")
    if torch.cuda.is_available():
        found.append("cuda")
    if mps_available():
        found.append("mps")
    found.append("cpu")
    if emulated:
        found.append("sdaa")
    return found


# --------------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------------


@dataclass
class AmpPolicy:
    """What ``--amp`` means on one device: autocast or not, in which dtype, with a scaler or not."""

    enabled: bool
    dtype: Optional[torch.dtype] = None
    use_scaler: bool = False
    note: str = ""

    def describe(self) -> str:
        if not self.enabled:
            return "fp32" + (f" ({self.note})" if self.note else "")
        name = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.dtype, "device default")
        scaler = " + grad scaler" if self.use_scaler else ""
        return f"autocast {name}{scaler}" + (f" ({self.note})" if self.note else "")




# --------------------------------------------------------------------------------------------
# The device
# --------------------------------------------------------------------------------------------


#: device type -> whether a fused AdamW step ran there (see Device.fused_optimizer)
_FUSED_OPTIMIZER: dict[str, bool] = {}


@dataclass
class Device:
    """A resolved device: its type, index, and why it was chosen.

    Build it with :func:`resolve`, never directly, so that availability is checked once.
    """

    type: str
    index: Optional[int] = None
    reason: str = ""
    _module: Any = field(default=None, repr=False)

    # -- identity ---------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.spec)

    @property
    def module(self) -> Any:
        """``torch.sdaa`` / ``torch.cuda`` / ``torch.mps``, or ``None`` for the CPU."""
        return self._module

    @property
    def emulated(self) -> bool:
        """True for the kit's emulated SDAA card: a real sdaa device to torch, with the CPU doing the work."""
        return self.type == "sdaa" and sdaa_emulated(self._module)

    def __str__(self) -> str:
        return self.spec

    def name(self) -> str:
        """A human-readable name of the hardware (card model, or the CPU model)."""
        if self.type in ("sdaa", "cuda"):
            return str(self.module.get_device_name(self.index or 0))
        if self.type == "mps":
            return "Apple GPU (MPS)"
        return cpuinfo.model_name()

    # -- placement and processes -----------------------------------------------------------
    def set_device(self, local_rank: int) -> "Device":
        """Bind this process to card ``local_rank`` (no-op on CPU/MPS); return the indexed device."""
        if self.type in ("sdaa", "cuda"):
            self.module.set_device(local_rank)
            return Device(self.type, local_rank, self.reason, self._module)
        return self

    @property
    def dist_backend(self) -> str:
        """The torch.distributed backend for this device: tccl (SDAA), nccl (CUDA), gloo otherwise."""
        return DIST_BACKENDS[self.type]

    def device_count(self) -> int:
        if self.type in ("sdaa", "cuda"):
            return int(self.module.device_count())
        return 1

    def synchronize(self) -> None:
        """Wait for queued work, so wall-clock timings measure the device, not the launch queue."""
        if self.type in ("sdaa", "cuda"):
            self.module.synchronize()
        elif self.type == "mps":
            torch.mps.synchronize()

    # -- memory -----------------------------------------------------------------------------
    def total_memory(self) -> Optional[int]:
        if self.type in ("sdaa", "cuda"):
            return int(self.module.get_device_properties(self.index or 0).total_memory)
        return None

    # -- mixed precision --------------------------------------------------------------------
    def amp_policy(self, amp: str | bool | None) -> AmpPolicy:
        """Decide what ``--amp`` means here. ``amp`` is one of none/auto/fp16/bf16 (True = auto)."""
        amp = {True: "auto", False: "none", None: "none"}.get(amp, amp)  # type: ignore[arg-type]
        if amp not in AMP_CHOICES:
            raise UserError(f"--amp must be one of {', '.join(AMP_CHOICES)}, not {amp!r}")
        if amp == "none":
            return AmpPolicy(False)
        if self.type == "sdaa":
            # torch.sdaa.amp.autocast() takes no dtype in the ports; it picks the card's half type.
            note = "" if amp == "auto" else f"torch.sdaa.amp chooses its own half type; {amp} not forced"
            if self.emulated:  # the emulator's half type is known: float16 (emulator/README.md says why)
                return AmpPolicy(True, torch.float16, True, "emulated card" + (f"; {note}" if note else ""))
            return AmpPolicy(True, None, True, note)
        if self.type == "cuda":
            if amp == "auto":
                amp = "bf16" if self.module.is_bf16_supported() else "fp16"
            if amp == "bf16":
                return AmpPolicy(True, torch.bfloat16, False)
            return AmpPolicy(True, torch.float16, True)
        if self.type == "mps":
            return AmpPolicy(False, note="mixed precision is not wired for MPS in this kit; training in fp32")
        # CPU: torch's CPU autocast accepts float16 and bfloat16, but only bf16 pays, and only where the CPU
        # has it in hardware. fp16 arithmetic is fast only on CPUs with AVX512-FP16/AMX-FP16, which the kit
        # does not look for: on this project's CPU a 512x512 fp16 matmul ran at 1.4 % of fp32's speed.
        if amp == "fp16":
            return AmpPolicy(
                False,
                note=(
                    "fp16 on a CPU: torch's CPU autocast accepts float16, but CPUs (bar the few with AVX512-FP16 "
                    "or AMX-FP16) have no fast fp16 arithmetic, so it would run slower than fp32; training in fp32"
                ),
            )
        if not cpuinfo.has_native_bf16():
            ratio = timing.measure_cpu_bf16_ratio()
            return AmpPolicy(
                False,
                note=(
                    f"this CPU has no native bf16: a bf16 matmul ran at {100 * ratio:.1f} % of fp32 speed, "
                    "so autocast would slow training down; training in fp32"
                ),
            )
        return AmpPolicy(True, torch.bfloat16, False)

    def autocast(self, policy: AmpPolicy) -> ContextManager:
        """The autocast context for ``policy`` (a null context when mixed precision is off)."""
        if not policy.enabled:
            return contextlib.nullcontext()
        if self.type == "sdaa":
            return self.module.amp.autocast()
        return torch.autocast(self.type, dtype=policy.dtype)

    def grad_scaler(self, policy: AmpPolicy) -> Optional[Any]:
        """A GradScaler when ``policy`` needs one (fp16 on CUDA, SDAA autocast), else ``None``."""
        if not (policy.enabled and policy.use_scaler):
            return None
        if self.type == "sdaa":
            return self.module.amp.GradScaler()
        amp_scaler = getattr(torch.amp, "GradScaler", None)  # torch >= 2.3
        if amp_scaler is not None:
            return amp_scaler(self.type)
        return torch.cuda.amp.GradScaler()  # torch 2.2

    # -- optimizer kernels ----------------------------------------------------------------
    def fused_optimizer(self) -> bool:
        """Whether torch's fused Adam/AdamW kernels run here.

        A fused step updates every parameter in one kernel instead of a handful of ops per tensor, which
        matters most for small models with many small tensors (docs/results.md gives the figures).
        Same update rule, another summation order, so results agree to rounding only.

        Only where the kernels are known to exist: CUDA, the CPU from torch 2.4, and the emulated SDAA card
        where the CPU has them (its kernels are the CPU's). A real SDAA card and MPS keep
        torch's default path: torch_sdaa documents no fused optimizers, and a kernel that exists for
        ``privateuse1`` in name only would fail at the first step, not at construction. The answer is
        probed once per device (type, and emulated or not) with a real step on a two-element tensor.
        """
        if self.type not in ("cuda", "cpu") and not self.emulated:  # the emulated card runs the CPU's kernels
            return False
        key = f"{self.type}-emulated" if self.emulated else self.type
        if key not in _FUSED_OPTIMIZER:
            try:
                param = torch.zeros(2, device=self.torch_device, requires_grad=True)
                param.grad = torch.ones_like(param)
                torch.optim.AdamW([param], lr=1e-3, fused=True).step()
                _FUSED_OPTIMIZER[key] = True
            except (RuntimeError, TypeError, ValueError, NotImplementedError):
                _FUSED_OPTIMIZER[key] = False
        return _FUSED_OPTIMIZER[key]

    # -- description ------------------------------------------------------------------------
    def describe(self) -> dict:
        """A JSON-friendly summary, written into each run's config.json."""
        return {
            "device": self.spec,
            "type": self.type,
            "name": self.name(),
            "reason": self.reason,
            "count": self.device_count(),
            "total_memory": self.total_memory(),
            "dist_backend": self.dist_backend,
            "emulated": self.emulated,
            "torch": torch.__version__,
        }


# --------------------------------------------------------------------------------------------
# Choosing one
# --------------------------------------------------------------------------------------------



def resolve(spec: str | Device | None = "auto") -> Device:
    """Turn ``auto``, ``sdaa``, ``sdaa:1``, ``cuda``, ``cuda:0``, ``mps`` or ``cpu`` into a Device.

    ``auto`` picks sdaa > cuda > mps > cpu. Asking for a device that is not there raises a
    :class:`UserError` that says what to install or activate.
    """
    if isinstance(spec, Device):
        return spec
    spec = (spec or "auto").strip().lower()
    m = DEVICE_SPEC.match(spec)
    if not m:
        raise UserError(f"unknown device {spec!r}: use auto, sdaa, sdaa:N, cuda, cuda:N, mps or cpu")
    kind, index = m.group(1), m.group(2)
    index = int(index) if index is not None else None
    if kind == "auto":
        usable = available_types()
        kind = usable[0]
        reason = {
            "sdaa": "auto: torch_sdaa is importable and reports an SDAA card",
            "cuda": "auto: no SDAA card; torch.cuda.is_available() is True",
            "mps": "auto: no SDAA or CUDA device; Apple MPS is available",
            "cpu": "auto: no SDAA, CUDA or MPS device found"
            + (" (the emulated SDAA card is never picked by auto: ask for --device sdaa)"
               if "sdaa" in usable else ""),
        }[kind]
    else:
        reason = f"asked for {spec}"
    module = _check_available(kind, index)
    return Device(kind, index, reason, module)


def _check_available(kind: str, index: Optional[int]) -> Any:
    if kind == "sdaa":
        try:
            module = _import_torch_sdaa()
        except ImportError as e:
            if type(e).__module__.startswith("torch_sdaa"):  # the emulator's own refusal or build error
                raise UserError(f"torch_sdaa (emulated card): {e}") from None
            raise UserError(f"{SDAA_HELP} (import error: {e})") from None
        if not module.is_available():
            raise UserError("torch_sdaa is installed but reports no SDAA card "
                            "(check the driver and SDAA_VISIBLE_DEVICES)")
    elif kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError("CUDA was asked for, but torch.cuda.is_available() is False (CPU-only torch, or no driver)")
        module = torch.cuda
    elif kind == "mps":
        if not mps_available():
            raise UserError("MPS was asked for, but this machine or torch build has no Apple MPS backend")
        module = getattr(torch, "mps", None)
    else:
        return None
    if index is not None and index >= module.device_count():
        raise UserError(f"{kind}:{index} was asked for, but only {module.device_count()} {kind} device(s) are visible")
    return module

