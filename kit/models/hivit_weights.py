"""HiViT weights from elsewhere: an mmpretrain (or kit) state dict mapped onto :class:`kit.models.hivit.HiViT`.

A module apart from the model so that the model file holds the network only; timm calls this function as the
family's ``pretrained_filter_fn`` (through :func:`kit.models.weights.build_offline`), and
:data:`kit.models.CHECKPOINT_FILTERS` names it for loading a checkpoint into a built model.
"""

from __future__ import annotations

import torch.nn as nn
from timm.layers import resample_abs_pos_embed, resize_rel_pos_bias_table

__all__ = ["checkpoint_filter_fn"]


def checkpoint_filter_fn(state_dict: dict, model: nn.Module) -> dict:
    """Map an mmpretrain or kit state dict onto ``model``'s names (kit.models.weights has unwrapped it).

    Strips ``backbone.``, maps ``head.fc.`` to ``head.``, drops mmpretrain's data_preprocessor buffers.
    When the model was built for another image size, pos_embed and the bias tables are resampled
    (timm's helpers) and the index buffers are taken from the model.
    """
    own = model.state_dict()
    out = {}
    for k, v in state_dict.items():
        if k.startswith("data_preprocessor."):
            continue
        if k.startswith("backbone."):
            k = k[len("backbone.") :]
        elif k.startswith("head.fc."):
            k = "head." + k[len("head.fc.") :]
        if k in own and v.shape != own[k].shape:
            if k == "pos_embed":
                v = resample_abs_pos_embed(v, new_size=list(model.grid_size), num_prefix_tokens=0)
            elif k.endswith("relative_position_bias_table"):
                v = resize_rel_pos_bias_table(v, new_window_size=model.grid_size, new_bias_shape=own[k].shape)
            elif k.endswith("relative_position_index"):
                v = own[k]
        out[k] = v
    return out
