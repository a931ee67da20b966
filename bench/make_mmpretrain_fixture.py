"""Make the committed mmpretrain fixture for tests/test_hivit.py, and check real HiViT-tiny by hand.

mmpretrain is NOT a dependency of the kit or of its tests. This script runs once, by hand, with
mmpretrain 1.2.0 installed on the side, outside the repo and the venv, e.g.::

    python -m pip install --target /work/mm-site mmengine mmcv-lite
    python -m pip install --target /work/mm-site --no-deps mmpretrain==1.2.0 importlib_metadata \
        modelindex model-index ordered-set markdown einops zipp lazy_importer
    # then delete any torch*/numpy*/PIL* copies pip put there, so the venv's are used

and then::

    PYTHONPATH=$PWD:/work/mm-site python bench/make_mmpretrain_fixture.py            # writes tests/data/
    PYTHONPATH=$PWD:/work/mm-site python bench/make_mmpretrain_fixture.py --tiny224  # manual check only

It builds a tiny custom-arch mmpretrain ``ImageClassifier`` (HiViT backbone, ape + rpe, global
average pooling, linear head), runs its own ``init_weights()``, then adds seeded noise to every
parameter (so zero biases and unit LayerNorm weights cannot hide a wrong name mapping), and saves:

* ``tests/data/hivit_mmpretrain_32.pth``: the checkpoint in mmpretrain's layout
  ({'meta': ..., 'state_dict': {'backbone.*', 'head.fc.*', ...}}), as ``runner.save_checkpoint`` writes it;
* ``tests/data/hivit_mmpretrain_32_io.pt``: the kit model arguments that match it, a fixed input and
  mmpretrain's logits for that input (eval mode).

``--tiny224`` builds mmpretrain's tiny from its packaged classification config, loads its checkpoint
through ``timm.create_model(..., pretrained=True, pretrained_cfg_overlay=dict(file=...))`` and prints
the largest logit difference (explicit and fused attention).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data"

#: The fixture's architecture, in mmpretrain's words and in the kit's.
#: Patch 8 on 32x32 gives a 2x2 stem conv and a 4x4 token grid. The main stage needs at least 7 blocks:
#: mmpretrain's forward also tests its out_index (depths[-1] - 1) against the stem module indices
#: (2 + 1 + 2 + 1 = 6 modules here) and would reshape a stem tensor if they collided.
MM_ARCH = dict(embed_dims=32, depths=[1, 1, 7], num_heads=2)
IMG, PATCH, NUM_CLASSES = 32, 8, 5
KIT_KWARGS = dict(img_size=IMG, patch_size=PATCH, embed_dim=32, depths=(1, 1, 7), num_heads=2, num_classes=NUM_CLASSES)


def _import_mmpretrain():
    try:
        import mmpretrain  # noqa: F401
        import mmpretrain.models  # noqa: F401  (registers HiViT, ImageClassifier, ...)
        from mmpretrain.registry import MODELS
    except ImportError as e:
        sys.exit(f"mmpretrain is not importable ({e}); install it on the side and put it on PYTHONPATH")
    return MODELS


def build_mm_classifier(MODELS, arch, num_classes: int, in_channels: int, img_size: int, patch_size: int):
    """An ImageClassifier the way configs/_base_/models/hivit/*.py build one (ape + rpe on)."""
    cfg = dict(
        type="ImageClassifier",
        backbone=dict(type="HiViT", arch=arch, img_size=img_size, patch_size=patch_size, ape=True, rpe=True,
                      drop_path_rate=0.1),
        neck=dict(type="GlobalAveragePooling"),
        head=dict(type="LinearClsHead", num_classes=num_classes, in_channels=in_channels, init_cfg=None,
                  loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, mode="original")),
        init_cfg=[dict(type="TruncNormal", layer="Linear", std=0.02, bias=0.0),
                  dict(type="Constant", layer="LayerNorm", val=1.0, bias=0.0)],
    )
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


@torch.no_grad()
def mm_logits(model, x: torch.Tensor) -> torch.Tensor:
    return model(x, mode="tensor")


def make_fixture(MODELS) -> None:
    torch.manual_seed(0)
    model = build_mm_classifier(MODELS, dict(MM_ARCH), NUM_CLASSES, MM_ARCH["embed_dims"], IMG, PATCH)
    with torch.no_grad():  # every parameter matters for the comparison
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.randn(3, 3, IMG, IMG)
    logits = mm_logits(model, x)
    OUT.mkdir(parents=True, exist_ok=True)
    ckpt = {"meta": {"mmpretrain_version": "1.2.0", "note": "made by bench/make_mmpretrain_fixture.py"},
            "state_dict": model.state_dict()}
    torch.save(ckpt, OUT / "hivit_mmpretrain_32.pth")
    torch.save({"kit_kwargs": KIT_KWARGS, "input": x, "logits": logits}, OUT / "hivit_mmpretrain_32_io.pt")
    for name in ("hivit_mmpretrain_32.pth", "hivit_mmpretrain_32_io.pt"):
        print(f"wrote {OUT / name} ({(OUT / name).stat().st_size:,} bytes)")
    print("state_dict keys:", len(ckpt["state_dict"]), "| logits[0]:", [round(v, 5) for v in logits[0].tolist()])


def check_tiny224(MODELS) -> None:
    import timm
    from mmengine.config import Config

    import kit.models  # noqa: F401  (registers the kit's models in timm)

    cfg_file = Path(sys.modules["mmpretrain"].__file__).parent / ".mim/configs/_base_/models/hivit/tiny_224.py"
    cfg = Config.fromfile(str(cfg_file))
    torch.manual_seed(0)
    mm = MODELS.build(cfg.model)
    mm.init_weights()
    mm.eval()
    with torch.no_grad():
        for p in mm.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    x = torch.randn(2, 3, 224, 224)
    ref = mm_logits(mm, x)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hivit_tiny_mm.pth"
        torch.save({"meta": {}, "state_dict": mm.state_dict()}, path)
        ours = timm.create_model("hivit_tiny_patch16_224", pretrained=True,
                                 pretrained_cfg_overlay=dict(file=str(path))).eval()
    from kit.models.hivit import Attention

    for fused in (False, True):
        Attention.sdpa_on_cpu_with_bias = fused  # really run SDPA for the fused line (CPU default: explicit)
        for m in ours.modules():
            if hasattr(m, "fused_attn"):
                m.fused_attn = fused
        with torch.no_grad():
            out = ours(x)
        print(f"tiny@224 fused_attn={fused}: max |ours - mmpretrain| = {(out - ref).abs().max().item():.3e} "
              f"(logit scale {ref.abs().max().item():.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny224", action="store_true", help="only run the manual check of real tiny at 224")
    args = parser.parse_args()
    MODELS = _import_mmpretrain()
    if args.tiny224:
        check_tiny224(MODELS)
    else:
        make_fixture(MODELS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
