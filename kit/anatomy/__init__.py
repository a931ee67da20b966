"""A model taken apart: parameters, FLOPs, shapes, attention, per stage; ``kit anatomy``.

    plots.py        Pictures of what :mod:`kit.anatomy.report` reads off a model: parameters per stage, the patch grids
    report.py       What a model is made of, read off the real modules: parameters, FLOPs, shapes and attention
    speed.py        HiViT's masked forward, timed: the speed-up that running the stem on kept units only buys
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # plots
    "plot_param_table": "plots",
    "plot_patch_grid": "plots",
    "plot_patch_merge": "plots",
    "plot_locality": "plots",
    "plot_masked_units": "plots",
    "plot_attention_maps": "plots",
    "plot_layerscale": "plots",
    "plot_talking_heads": "plots",
    "plot_architecture": "plots",
    # report
    "Stage": "report",
    "StageRow": "report",
    "Anatomy": "report",
    "stages": "report",
    "param_table": "report",
    "example_input": "report",
    "evaluating": "report",
    "count_flops": "report",
    "stage_shapes": "report",
    "explicit_attention": "report",
    "attention_maps": "report",
    "talking_heads": "report",
    "layerscale": "report",
    "anatomy": "report",
    "format_report": "report",
    # speed
    "masked_forward_times": "speed",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
