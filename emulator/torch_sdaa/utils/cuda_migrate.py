"""CUDA code on the card, unchanged: ``from torch_sdaa.utils import cuda_migrate`` or TORCH_SDAA_AUTOLOAD=cuda_migrate.

What a ModelZoo port relies on (``../shared/reference/modelzoo.md`` §1.5-1.6): ``.cuda()``, ``torch.cuda.*``,
``device="cuda"``, ``torch.device("cuda")``, ``torch.cuda.amp`` and the ``nccl`` backend all reach the card.
How the emulator does it: every device argument that names CUDA is rewritten to the card before torch sees it
(the factory functions, ``Tensor.to``/``cuda``, ``Module.to``/``cuda``, ``torch.device``), ``torch.cuda``'s
functions become ``torch.sdaa``'s, and ``nccl`` becomes ``tccl``. Importing this module twice migrates once.
"""

from __future__ import annotations

import functools
import re

import torch
import torch.distributed as dist

import torch_sdaa  # noqa: F401  (the card and torch.sdaa)

__all__ = ["migrated", "to_sdaa"]

_CUDA = re.compile(r"^cuda(?=$|:)")
migrated = False


def to_sdaa(dev):
    """``dev`` with CUDA replaced by the card: "cuda:1" -> "sdaa:1", torch.device("cuda") -> sdaa, 0 stays 0."""
    if isinstance(dev, str) and _CUDA.match(dev):
        return _CUDA.sub("sdaa", dev)
    if isinstance(dev, _RealDevice) and dev.type == "cuda":
        return _RealDevice("sdaa", dev.index) if dev.index is not None else _RealDevice("sdaa")
    return dev


_RealDevice = torch.device


class _DeviceMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, _RealDevice)


class _MigratedDevice(metaclass=_DeviceMeta):
    """``torch.device`` that turns "cuda" into "sdaa"; ``isinstance(x, torch.device)`` keeps working."""

    def __new__(cls, *args, **kwargs):
        if args:
            args = (to_sdaa(args[0]),) + args[1:]
        if kwargs.get("type") == "cuda":
            kwargs["type"] = "sdaa"
        return _RealDevice(*args, **kwargs)


def _wrap(fn, positional: bool = False):
    """``fn`` with its ``device=`` argument (and, with ``positional``, every positional one) sent to the card."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if positional:
            args = tuple(to_sdaa(a) for a in args)
        if "device" in kwargs:
            kwargs["device"] = to_sdaa(kwargs["device"])
        return fn(*args, **kwargs)

    return wrapper


def _card(device=None) -> str:
    """The card ``.cuda(device)`` means: an index, "cuda:N", a CUDA torch.device, or None (the current card)."""
    index = device if isinstance(device, int) else None if device is None else _RealDevice(to_sdaa(device)).index
    return f"sdaa:{torch.sdaa.current_device() if index is None else index}"


def _tensor_cuda(self, device=None, non_blocking=False, **kwargs):
    return self.to(_card(device), non_blocking=non_blocking)


def _module_cuda(self, device=None):
    return self.to(_card(device))


_FACTORIES = ("tensor", "as_tensor", "empty", "zeros", "ones", "full", "rand", "randn", "randint", "randperm",
              "arange", "linspace", "logspace", "eye", "empty_like", "zeros_like", "ones_like", "full_like",
              "rand_like", "randn_like", "randint_like", "empty_strided", "scalar_tensor", "tril_indices",
              "triu_indices")
_CUDA_NAMES = ("is_available", "device_count", "current_device", "set_device", "device", "synchronize",
               "get_device_name", "get_device_properties", "get_device_capability", "is_bf16_supported",
               "manual_seed", "manual_seed_all", "seed", "seed_all", "initial_seed", "get_rng_state",
               "set_rng_state", "get_rng_state_all", "set_rng_state_all", "Stream", "Event", "stream",
               "current_stream", "default_stream", "is_current_stream_capturing", "empty_cache", "memory_allocated",
               "max_memory_allocated",
               "reset_max_memory_allocated", "memory_reserved", "max_memory_reserved", "memory_stats",
               "reset_peak_memory_stats", "is_initialized", "init")


def _init_process_group(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if args and str(args[0]).lower() == "nccl":
            args = ("tccl",) + args[1:]
        if str(kwargs.get("backend", "")).lower() == "nccl":
            kwargs["backend"] = "tccl"
        return fn(*args, **kwargs)

    return wrapper


class _CudaAutocast(torch.sdaa.amp.autocast):
    """``torch.cuda.amp.autocast(enabled, dtype, cache_enabled)`` on the card."""


def _autocast(fn_cls):
    class Autocast(fn_cls):
        def __init__(self, device_type, *args, **kwargs):
            super().__init__(to_sdaa(device_type), *args, **kwargs)

    Autocast.__name__ = fn_cls.__name__
    return Autocast


def _migrate() -> None:
    global migrated
    if migrated:
        return
    for name in _FACTORIES:
        if hasattr(torch, name):
            setattr(torch, name, _wrap(getattr(torch, name)))
    torch.device = _MigratedDevice
    torch.Tensor.to = _wrap(torch.Tensor.to, positional=True)
    torch.Tensor.cuda = _tensor_cuda
    torch.nn.Module.to = _wrap(torch.nn.Module.to, positional=True)
    torch.nn.Module.cuda = _module_cuda
    for name in _CUDA_NAMES:
        setattr(torch.cuda, name, getattr(torch.sdaa, name))
    torch.cuda.amp.autocast = _CudaAutocast
    torch.cuda.amp.GradScaler = torch.sdaa.amp.GradScaler
    torch.autocast = _autocast(torch.autocast)
    if hasattr(torch, "amp"):
        torch.amp.autocast = torch.autocast
        if hasattr(torch.amp, "GradScaler"):
            torch.amp.GradScaler = lambda device="cuda", *a, **k: torch.sdaa.amp.GradScaler(*a, **k)  # noqa: E731
    if dist.is_available():
        dist.init_process_group = _init_process_group(dist.init_process_group)
    migrated = True


_migrate()
