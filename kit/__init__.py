"""vitkit: train HiViT and CaiT on SDAA, CUDA or CPU, and validate a port by its loss curve.

``import kit`` registers the kit's models in timm, so that ``timm.create_model("hivit_tiny_patch16_224")``
works after it. Submodules are imported on first use, so ``import kit`` stays light.
"""

__version__ = "0.1.0"

from kit import models  # noqa: E402,F401  (registers HiViT and the workshop models in timm)
