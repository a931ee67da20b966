"""CaiT (Touvron et al., "Going deeper with Image Transformers", arXiv 2103.17239): timm's model, plus
a 32x32 workshop size.

The architecture is timm's ``timm.models.cait`` and is not rewritten here. This file only adds:

* ``cait_workshop_32``: a small CaiT for 32x32 images (8x8 tokens of 4x4 pixels), registered in timm
  with its own default config, so ``timm.create_model("cait_workshop_32")`` works after ``import kit``.
"""

from __future__ import annotations

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import register_model
from timm.models._registry import generate_default_cfgs
from timm.models.cait import Cait, _create_cait

__all__ = ["Cait", "cait_workshop_32"]


def _cfg(**kwargs) -> dict:
    """Default config of a kit CaiT: no download source (the kit never downloads weights)."""
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "fixed_input_size": True,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": "apache-2.0",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({"cait_workshop_32": _cfg()})


@register_model
def cait_workshop_32(pretrained: bool = False, **kwargs) -> Cait:
    """CaiT for 32x32 inputs that trains on the digits set in about a minute on 2 CPU cores.

    Patch 4 gives 8x8 = 64 tokens, so attention stays cheap. A shallow trunk learns best with a large
    LayerScale init: the CaiT authors use 0.1 up to depth 18 and 1e-5/1e-6 only for 24+ blocks.
    """
    model_args = dict(
        img_size=32,
        patch_size=4,
        num_classes=10,
        embed_dim=128,
        depth=6,
        num_heads=4,
        mlp_ratio=4.0,
        init_values=0.1,
        depth_token_only=2,
    )
    return _create_cait("cait_workshop_32", pretrained=pretrained, **dict(model_args, **kwargs))
