"""``tccl``: the card's collective backend for ``init_process_group("tccl")``, DDP and torchrun.

Tecorigin's TCCL talks card to card. The emulated cards live in host memory, so their collectives run
gloo's CPU algorithms over views of the same bytes (no copies): a DDP all-reduce of card gradients is gloo's
all-reduce of those very buffers. Registered for the ``sdaa`` device, so ``init_process_group("tccl")``
gives sdaa tensors to tccl, as on a real machine.
"""

from __future__ import annotations

import torch.distributed as dist

from torch_sdaa._state import C

__all__ = ["BACKEND", "register"]

BACKEND = "tccl"


def _create(store, rank: int, size: int, timeout):
    from torch._C._distributed_c10d import ProcessGroupGloo

    return C.make_tccl(ProcessGroupGloo(store, rank, size, timeout), rank, size)


def register() -> None:
    if not dist.is_available() or hasattr(dist.Backend, BACKEND.upper()):
        return
    dist.Backend.register_backend(BACKEND, _create, devices=["sdaa", "cpu"])
