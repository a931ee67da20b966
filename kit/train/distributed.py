"""Several processes (torchrun): who this process is, the process group, and means over all processes."""

from __future__ import annotations

import collections
import contextlib
import os

import torch
import torch.distributed as dist
from timm.utils import reduce_tensor

from kit.device import shim as device

__all__ = ["dist_info", "distributed", "keep_alive", "global_mean"]


def dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size); (0, 0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size()
    return 0, 0, 1


@contextlib.contextmanager
def distributed(dev: device.Device):
    """Under torchrun (``WORLD_SIZE`` > 1): bind ``dev`` to card ``LOCAL_RANK``, join the process group (unless
    this process is in one already), and leave it after. Yields the device to train on: ``dev`` itself in a
    single process, so that ``kit train`` resolves its device once and hands it to the loop."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield dev
        return
    dev = dev.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if dist.is_available() and dist.is_initialized():
        yield dev
        return
    dist.init_process_group(backend=dev.dist_backend)
    try:
        yield dev
    finally:
        dist.destroy_process_group()
        _REDUCED.clear()


#: The last tensors handed to a collective, kept alive until the process group is destroyed. Before torch 2.8
#: (pytorch#154976) a gloo work could drop the last reference to its tensor from a worker thread, which needs the
#: GIL, while the main thread held the GIL inside ``destroy_process_group`` waiting for that worker: a hang at
#: the end of a run (seen on torch 2.2, the SDAA floor). Only works still in flight are at risk: the last few.
_REDUCED: collections.deque = collections.deque(maxlen=16)


def keep_alive(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, kept referenced until the process group is destroyed (see :data:`_REDUCED`)."""
    _REDUCED.append(tensor)
    return tensor


def global_mean(value: torch.Tensor, world: int) -> float:
    """A scalar averaged over all processes (timm's ``reduce_tensor``), as a Python float."""
    value = value.detach().float()
    return float((keep_alive(reduce_tensor(value, world)) if world > 1 else value).item())
