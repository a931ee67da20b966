"""The device shim: one object per device (sdaa, cuda, mps, cpu) and what it can do.

    choices.py      What a user may ask of the device shim, as plain data: the device spellings and the AMP modes
    command.py      ``kit devices``: what the device shim sees on this machine, which device ``auto`` picks and why
    cpuinfo.py      What ``/proc/cpuinfo`` says about the host CPU: its model name
    shim.py         The device shim: one object that hides what differs between SDAA, CUDA, MPS and the CPU
    timing.py       Timing on the kit's devices: matmul FLOP/s and the CPU's bf16/fp32 speed ratio
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # choices
    "AMP_CHOICES": "choices",
    "DEVICE_TYPES": "choices",
    "DEVICE_SPEC": "choices",
    # command
    "report": "command",
    # cpuinfo
    "BF16_FLAGS": "cpuinfo",
    "bf16_flags": "cpuinfo",
    "has_native_bf16": "cpuinfo",
    "model_name": "cpuinfo",
    # shim
    "SDAA_HELP": "shim",
    "DIST_BACKENDS": "shim",
    "AmpPolicy": "shim",
    "Device": "shim",
    "sdaa_module": "shim",
    "sdaa_emulated": "shim",
    "mps_available": "shim",
    "available_types": "shim",
    "resolve": "shim",
    "lacking_operator": "shim",
    # timing
    "warm_up": "timing",
    "measure": "timing",
    "measure_matmul_flops": "timing",
    "measure_cpu_bf16_ratio": "timing",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
