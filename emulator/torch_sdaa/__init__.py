"""vitkit's emulated SDAA card: a PrivateUse1 backend named ``sdaa`` with host memory behind it.

NOT Tecorigin's torch_sdaa. It is importable under the same name so that the kit, the learners' code and
the ModelZoo ports find it where they look; it refuses to load where a real torch_sdaa is installed.
Every number it gives is a CPU number: it never measures the card.

``import torch_sdaa`` (or ``TORCH_SDAA_AUTOLOAD=cuda_migrate`` with the emulator installed) gives
``torch.sdaa`` (a twin of ``torch.cuda``), ``sdaa`` / ``sdaa:N`` devices, ``torch.sdaa.amp``, the ``tccl``
collective backend and ``torch_sdaa.utils.cuda_migrate``. Settings: :mod:`torch_sdaa.config`.
"""

from __future__ import annotations

import atexit
import os
import sys

import torch

from torch_sdaa._state import C, settings

__version__ = "0.1.0+emulated"
EMULATED = True
__all__ = ["EMULATED", "__version__", "settings", "lacking_ops", "set_lacking_ops"]

if torch._C._get_privateuse1_backend_name() != "sdaa":
    torch.utils.rename_privateuse1_backend("sdaa")
C.register_hooks()
if not hasattr(torch, "sdaa"):
    C.route_composites_to_cpu()

from torch_sdaa import card as _card  # noqa: E402  (needs the backend named first)

if not hasattr(torch, "sdaa"):
    torch._register_device_module("sdaa", _card)
    sys.modules["torch.sdaa"] = _card
    sys.modules["torch.sdaa.amp"] = _card.amp
    torch.utils.generate_methods_for_privateuse1_backend(for_tensor=True, for_module=True, for_storage=True)

from torch_sdaa import distributed as _distributed  # noqa: E402

_distributed.register()


def lacking_ops() -> list:
    """The operators this card lacks (SDAA_EMULATOR_LACKING_OPS, or set_lacking_ops)."""
    return sorted(C.lacking())


def set_lacking_ops(ops: list, autofallback: bool = None) -> None:
    """Declare the operators the card lacks, now (``autofallback`` None: TORCH_SDAA_RUNTIME_AUTOFALLBACK's value)."""
    if autofallback is None:
        autofallback = os.environ.get("TORCH_SDAA_RUNTIME_AUTOFALLBACK", "").strip() not in ("", "0")
    bad = [op for op in ops if not str(op).startswith("aten::")]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an ATen operator name (aten::NAME)")
    C.set_lacking([str(op) for op in ops], bool(autofallback))



def _let_autograd_threads_settle() -> None:
    """At exit, give up the GIL for a moment. Why: the first backward on the card starts torch's autograd device
    threads (one per card), and each takes the GIL once as it starts. A short script can end before a thread got
    it; the thread then asks for the GIL during interpreter finalisation, CPython ends it with pthread_exit, and
    unwinding through torch's C++ frames aborts the process ("terminate called without an active exception",
    exit code 134) after the script's work is done -- about one run in three of a few steps, measured. 20 ms
    without the GIL lets every such thread finish starting; none was seen to abort since (20 runs)."""
    import time

    time.sleep(0.02)


atexit.register(_let_autograd_threads_settle)

if os.environ.get("TORCH_SDAA_AUTOLOAD", "").strip() == "cuda_migrate":
    from torch_sdaa.utils import cuda_migrate  # noqa: E402,F401
