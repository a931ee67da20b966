"""What ``/proc/cpuinfo`` says about the host CPU: its model name, and whether it does bf16 in hardware.

Kept apart from the device shim because it is plain text parsing with no torch in it: the shim asks
:func:`has_native_bf16` before it lets ``--amp`` autocast on a CPU, and names the CPU with :func:`model_name`.
A machine without ``/proc/cpuinfo`` (macOS, Windows) gets the cautious answers: no native bf16, and the
name the ``platform`` module gives.
"""

from __future__ import annotations

import platform
import re

__all__ = ["BF16_FLAGS", "bf16_flags", "has_native_bf16", "model_name"]

#: The /proc/cpuinfo flags that mean bf16 arithmetic in hardware: AVX512-BF16 and AMX-BF16.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")

_PATH = "/proc/cpuinfo"


def _read() -> str:
    try:
        with open(_PATH, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def bf16_flags() -> list[str]:
    """Which of :data:`BF16_FLAGS` /proc/cpuinfo lists (none where there is no /proc/cpuinfo)."""
    found = set(re.findall(r"\b(" + "|".join(BF16_FLAGS) + r")\b", _read()))
    return [flag for flag in BF16_FLAGS if flag in found]


def has_native_bf16() -> bool:
    """True when the CPU advertises bf16 arithmetic (AVX512-BF16 or AMX-BF16) in /proc/cpuinfo."""
    return bool(bf16_flags())


def model_name() -> str:
    """The CPU's marketing name (the first ``model name`` line), else what ``platform`` knows, else "CPU"."""
    for line in _read().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "CPU"
