"""What a user may ask of the device shim, as plain data: the device spellings and the AMP modes.

Why a module without torch: the recipe schema (:mod:`kit.config.schema`), the command lines and ``kit align
compare --help`` check these choices, and none of them should pay for importing torch to do so. The shim
(:mod:`kit.device.shim`) reads the same constants, so there is one source for each rule.
"""

from __future__ import annotations

import re

__all__ = ["AMP_CHOICES", "DEVICE_TYPES", "DEVICE_SPEC"]

#: ``--amp``: none, auto (the device's best: bf16 where it pays, else fp16 with a grad scaler), fp16, bf16.
AMP_CHOICES = ("none", "auto", "fp16", "bf16")
#: The device types, in the order ``auto`` prefers them.
DEVICE_TYPES = ("sdaa", "cuda", "mps", "cpu")
#: ``auto``, a type, or a type with a card number (``sdaa:1``); :func:`kit.device.shim.resolve` lower-cases and strips.
DEVICE_SPEC = re.compile(rf"^(auto|{'|'.join(DEVICE_TYPES)})(?::(\d+))?$")
