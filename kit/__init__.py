"""vitkit: train HiViT and CaiT on SDAA, CUDA or CPU, and validate a port by its loss curve.

``import kit`` imports torch and timm and registers the kit's models in timm, so that
``timm.create_model("hivit_tiny_patch16_224")`` works after it. The other submodules (the trainer,
the loss-curve tools, the notebooks' helpers) are imported by name when needed; ARCHITECTURE.md
says which does what.
"""

__version__ = "0.1.0"

from kit import models  # noqa: E402,F401  (registers HiViT and the workshop models in timm)
