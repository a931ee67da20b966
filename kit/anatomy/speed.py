"""HiViT's masked forward, timed: the speed-up that running the stem on kept units only buys.

Why it lives here and not beside the device's timers: it needs a model (HiViT's masking ids, the
anatomy's example input), and the device shim, which :mod:`kit.device.timing` serves, sits below the models.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import torch
import torch.nn as nn

from kit.anatomy.forward import evaluating, example_input
from kit.device.shim import Device
from kit.device.timing import measure
from kit.models.hivit import random_masking_ids

__all__ = ["masked_forward_times"]


def masked_forward_times(model: nn.Module, mask_ratios: Sequence[float] = (0.0, 0.75), batch: int = 8,
                         min_run_time: float = 1.0, device: Optional[Device] = None) -> dict[float, float]:
    """Median seconds of one forward of ``model`` (a HiViT) keeping ``1 - ratio`` of the main tokens.

    HiViT's stem never mixes tokens, so running it on the kept units only is exact (MAE-style
    pre-training); the time it saves is the point of the architecture. Each ratio is timed for at least
    ``min_run_time`` seconds, in eval mode without autograd (the model's mode is put back after);
    ``device`` is the kit Device the model is on (None: the CPU).
    """
    x = example_input(model, batch=batch)
    generator = torch.Generator().manual_seed(0)
    ids = {r: random_masking_ids(batch, model.num_patches, r, generator=generator) for r in mask_ratios}
    with evaluating(model), torch.no_grad():
        return {
            r: measure(functools.partial(model.forward_features, x, ids_keep=ids[r] if r > 0 else None),
                       device, min_run_time).median
            for r in mask_ratios
        }
