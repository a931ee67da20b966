"""``torch.sdaa``: the device API of the emulated card, the names torch_sdaa gives the ports (a twin of torch.cuda).

Every call reaches the C++ card (``_C``): the current card is the device guard's, the memory figures are the
allocator's own counts, the generators are the card's. Streams and events exist so that code written for a
card runs; the emulator works in order on the host, so a stream never has queued work and an event is done
as soon as it is recorded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from torch_sdaa import amp  # noqa: F401  (torch.sdaa.amp)
from torch_sdaa._state import C, settings

__all__ = [
    "is_available", "device_count", "current_device", "set_device", "device", "synchronize", "get_device_name",
    "get_device_properties", "get_device_capability", "is_bf16_supported", "is_initialized", "init",
    "manual_seed", "manual_seed_all", "seed", "seed_all", "initial_seed", "get_rng_state", "set_rng_state",
    "get_rng_state_all", "set_rng_state_all", "Stream", "Event", "stream", "current_stream", "default_stream",
    "is_current_stream_capturing",
    "empty_cache", "memory_allocated", "max_memory_allocated", "reset_max_memory_allocated", "memory_reserved",
    "max_memory_reserved", "memory_stats", "reset_peak_memory_stats", "get_amp_supported_dtype",
    "is_autocast_enabled", "set_autocast_enabled", "get_autocast_dtype", "set_autocast_dtype", "amp", "EMULATED",
    "CARD_NAME", "TOTAL_MEMORY",
]

#: Always True here: kit.device.shim reads it to tell an emulated card from a real one.
EMULATED = True
#: What a real machine's teco-smi calls the card, and this one's honest name.
CARD_NAME = "TECO_AICARD_01 (emulated on the CPU by vitkit)"
#: The memory each card reports, as teco-smi shows for a real card (15296 MiB); the emulator's memory is the host's.
TOTAL_MEMORY = 15296 * 2**20

Device = Union[int, str, torch.device, None]


def _index(dev: Device = None) -> int:
    if dev is None:
        return current_device()
    if isinstance(dev, int):
        index = dev
    else:
        dev = torch.device(dev)
        if dev.type != "sdaa":
            raise ValueError(f"expected an sdaa device, got {dev}")
        index = current_device() if dev.index is None else dev.index
    if not 0 <= index < device_count():
        raise RuntimeError(f"sdaa:{index} was asked for, but only {device_count()} SDAA card(s) are visible "
                           "(emulated)")
    return index


# -- devices ---------------------------------------------------------------------------------------

def is_available() -> bool:
    return device_count() > 0


def device_count() -> int:
    return len(settings.visible)


def is_initialized() -> bool:
    return True


def init() -> None:
    """Nothing to initialise: the card exists from import on."""


def _is_in_bad_fork() -> bool:  # torch.manual_seed asks a device module this before seeding it
    return False


def current_device() -> int:
    return C.current_card()


def set_device(dev: Device) -> None:
    C.set_current_card(_index(dev))


class device:  # noqa: N801  (torch.cuda.device's name)
    """Context manager that makes ``dev`` the current card, as ``torch.cuda.device``."""

    def __init__(self, dev: Device):
        self.index = _index(dev)
        self.saved: Optional[int] = None

    def __enter__(self):
        self.saved = current_device()
        set_device(self.index)
        return self

    def __exit__(self, *exc):
        set_device(self.saved)
        return False


def synchronize(dev: Device = None) -> None:
    """Wait for the card: its work runs in order on the host, so there is never anything to wait for."""
    _index(dev)


@dataclass(frozen=True)
class _Properties:
    name: str
    total_memory: int
    multi_processor_count: int
    major: int = 0
    minor: int = 0


def get_device_name(dev: Device = None) -> str:
    return f"{CARD_NAME}, card {settings.visible[_index(dev)]}"


def get_device_properties(dev: Device = None) -> _Properties:
    return _Properties(get_device_name(dev), TOTAL_MEMORY, torch.get_num_threads())


def get_device_capability(dev: Device = None) -> tuple:
    _index(dev)
    return (0, 0)


def is_bf16_supported() -> bool:
    """The emulator's half type is float16 (torch.sdaa.amp's default); bfloat16 tensors work, as on the CPU."""
    return True


# -- random numbers ----------------------------------------------------------------------------------

def manual_seed(seed: int) -> None:
    C.manual_seed(current_device(), int(seed) & (2**64 - 1))


def manual_seed_all(seed: int) -> None:
    for index in range(device_count()):
        C.manual_seed(index, int(seed) & (2**64 - 1))


def seed() -> None:
    manual_seed(torch.empty((), dtype=torch.int64).random_().item())


def seed_all() -> None:
    manual_seed_all(torch.empty((), dtype=torch.int64).random_().item())


def initial_seed() -> int:
    return C.initial_seed(current_device())


def get_rng_state(dev: Device = None) -> torch.Tensor:
    return C.get_rng_state(_index(dev))


def set_rng_state(state: torch.Tensor, dev: Device = None) -> None:
    C.set_rng_state(_index(dev), state.to("cpu", torch.uint8))


def get_rng_state_all() -> list:
    return [get_rng_state(i) for i in range(device_count())]


def set_rng_state_all(states: list) -> None:
    for i, state in enumerate(states):
        set_rng_state(state, i)


# -- streams and events ----------------------------------------------------------------------------------

# torch 2.2's dynamo asserts that a device module's Stream and Event derive from its abstract bases (it checks
# torch.cuda's, which cuda_migrate points here); later torch has torch.Stream/torch.Event and asks no such thing.
if hasattr(torch, "Event"):
    _STREAM_BASES: tuple = ()
    _EVENT_BASES: tuple = ()
else:
    from torch._streambase import _EventBase, _StreamBase

    _STREAM_BASES, _EVENT_BASES = (_StreamBase,), (_EventBase,)


class Stream(*_STREAM_BASES):
    """A card's stream. Work is never queued on the emulator, so every stream is always idle."""

    def __init__(self, device: Device = None, priority: int = 0, **kwargs: Any):
        self.device = torch.device("sdaa", _index(device))
        self.priority = priority

    def synchronize(self) -> None:
        pass

    def query(self) -> bool:
        return True

    def wait_stream(self, other: "Stream") -> None:
        pass

    def wait_event(self, event: "Event") -> None:
        pass

    def record_event(self, event: Optional["Event"] = None) -> "Event":
        event = event or Event()
        event.record(self)
        return event

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stream) and other.device == self.device

    def __hash__(self) -> int:
        return hash(("sdaa-stream", self.device))


class Event(*_EVENT_BASES):
    """A card's event; with ``enable_timing`` it measures host time, which is the card's time here."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        self.enable_timing = enable_timing
        self._time: Optional[float] = None

    def record(self, stream: Optional[Stream] = None) -> None:
        import time

        self._time = time.perf_counter()

    def wait(self, stream: Optional[Stream] = None) -> None:
        pass

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: "Event") -> float:
        if not (self.enable_timing and end.enable_timing):
            raise RuntimeError("Events were created without enable_timing=True")
        if self._time is None or end._time is None:
            raise RuntimeError("Both events must be recorded before elapsed_time")
        return (end._time - self._time) * 1000.0


_DEFAULT_STREAMS: dict = {}


def is_current_stream_capturing() -> bool:
    """No graph capture on the emulator (torch's optimizers ask torch.cuda this, which cuda_migrate points here)."""
    return False


def default_stream(dev: Device = None) -> Stream:
    index = _index(dev)
    return _DEFAULT_STREAMS.setdefault(index, Stream(index))


def current_stream(dev: Device = None) -> Stream:
    return default_stream(dev)


@contextlib.contextmanager
def stream(s: Optional[Stream]):
    yield s


# -- memory ----------------------------------------------------------------------------------

def memory_stats(dev: Device = None) -> dict:
    """The allocator's own counts, under the names torch.cuda.memory_stats uses for the same figures."""
    raw = C.memory_stats(_index(dev))
    return {
        "allocated_bytes.all.current": raw["allocated_bytes"],
        "allocated_bytes.all.peak": raw["peak_allocated_bytes"],
        "reserved_bytes.all.current": raw["allocated_bytes"],
        "reserved_bytes.all.peak": raw["peak_allocated_bytes"],
        "allocation.all.allocated": raw["num_allocations"],
        "allocation.all.freed": raw["num_frees"],
        "num_alloc_retries": 0,
        "num_ooms": 0,
    }


def memory_allocated(dev: Device = None) -> int:
    return C.memory_stats(_index(dev))["allocated_bytes"]


def max_memory_allocated(dev: Device = None) -> int:
    return C.memory_stats(_index(dev))["peak_allocated_bytes"]


def memory_reserved(dev: Device = None) -> int:
    """No caching allocator: what is reserved is what is allocated."""
    return memory_allocated(dev)


def max_memory_reserved(dev: Device = None) -> int:
    return max_memory_allocated(dev)


def reset_peak_memory_stats(dev: Device = None) -> None:
    C.reset_peak(_index(dev))


def reset_max_memory_allocated(dev: Device = None) -> None:
    reset_peak_memory_stats(dev)


def empty_cache() -> None:
    """No cache to empty: freed memory goes straight back to the host."""


# -- autocast hooks torch.autocast("sdaa") asks the device module for -------------------------------------

def get_amp_supported_dtype() -> list:
    return [torch.float16, torch.bfloat16]


def is_autocast_enabled() -> bool:
    return C.amp_enabled()


def set_autocast_enabled(enabled: bool) -> None:
    C.set_amp_enabled(bool(enabled))


def get_autocast_dtype() -> torch.dtype:
    return C.amp_dtype().dtype


def set_autocast_dtype(dtype: torch.dtype) -> None:
    C.set_amp_dtype(torch.empty(0, dtype=dtype))
