"""The emulated card's settings, read from the environment once, at import.

``SDAA_EMULATOR_CARDS``         how many cards the machine has (default 2)
``SDAA_VISIBLE_DEVICES``        which of them this process sees, as on a real machine ("1", "0,1", "")
``SDAA_EMULATOR_LACKING_OPS``   operators the card lacks, comma-separated ATen names (``aten::median`` or
                                ``aten::median.dim``); default: none
``TORCH_SDAA_RUNTIME_AUTOFALLBACK=1``  run the lacking operators on the CPU, with a warning, instead of failing
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DEFAULT_CARDS", "Settings", "read"]

DEFAULT_CARDS = 2


class SettingError(ImportError):
    """A setting of the emulator that cannot be used: names the variable and the value."""


@dataclass(frozen=True)
class Settings:
    cards: int
    visible: tuple
    lacking: tuple
    autofallback: bool


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 16:
        raise SettingError(f"{name}={raw!r}: must be a whole number of cards from 0 to 16")
    return int(raw)


def read() -> Settings:
    cards = _int("SDAA_EMULATOR_CARDS", DEFAULT_CARDS)
    raw = os.environ.get("SDAA_VISIBLE_DEVICES")
    if raw is None:
        visible = tuple(range(cards))
    else:
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not all(p.isdigit() and int(p) < cards for p in parts) or len(set(parts)) != len(parts):
            raise SettingError(f"SDAA_VISIBLE_DEVICES={raw!r}: must list distinct card numbers below {cards}")
        visible = tuple(int(p) for p in parts)
    lacking = tuple(op.strip() for op in os.environ.get("SDAA_EMULATOR_LACKING_OPS", "").split(",") if op.strip())
    bad = [op for op in lacking if not op.startswith("aten::")]
    if bad:
        raise SettingError(f"SDAA_EMULATOR_LACKING_OPS: {bad[0]!r} is not an ATen operator name (aten::NAME)")
    autofallback = os.environ.get("TORCH_SDAA_RUNTIME_AUTOFALLBACK", "").strip() not in ("", "0")
    return Settings(cards, visible, lacking, autofallback)
