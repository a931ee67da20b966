"""vitkit: train HiViT and CaiT on SDAA, CUDA or CPU, and validate a port by its loss curve.

``import kit`` is light: it imports no torch and no timm. The packages below load on first use
(``kit.validate`` never loads torch at all); ``import kit.models`` registers the kit's models in timm,
so that ``timm.create_model("hivit_tiny_patch16_224")`` works after it. ARCHITECTURE.md draws the layers.

    core/      errors, atomic writes, run lock, seeding, the command runner (no torch needed to import)
    device/    the device shim (sdaa, cuda, mps, cpu), CPU facts, timing, ``kit devices``
    models/    HiViT, CaiT, weights from a file, ``kit models``
    config/    recipes as data, resolving overrides, the schema every recipe is checked against
    data/      ImageNet-layout folders, transforms, samplers, loaders
    validate/  log formats, loss-curve comparison (the ModelZoo rule), the noise verdict, ``kit compare``
    train/     the parts, the loop, checkpoints, DDP helpers, ``kit train``
    anatomy/   parameters, FLOPs, shapes, attention of a model, ``kit anatomy``
    align/     ``kit align``: the first module where two devices' numbers diverge
    workshop/  notebook helpers, shipped assets, the papermill runner, report, live plot, ``kit workshop``
    cli.py     ``kit``: one sub-command per job
"""

__version__ = "0.1.0"

from kit.core.lazy import lazy_exports

__all__ = ["__version__"]

__getattr__, __dir__ = lazy_exports(__name__, {})
