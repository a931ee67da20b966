"""A model taken apart: parameters, FLOPs, shapes, attention, per stage; ``kit anatomy``.

    attention.py    Attention read off the real modules: the maps, CaiT's talking heads, LayerScale
    command.py      ``kit anatomy MODEL``: the report for a kit model, as tables or JSON
    flops.py        FLOPs and shapes per stage, from one forward of the real model
    forward.py      Running a model once to read it: an example input, eval mode, hooks that never outlive it
    layout.py       A model cut into stages, read off its module layout
    plots.py        Pictures of what the readings give: parameters per stage, the patch grids, attention
    report.py       What a model is made of, in one report: parameters, FLOPs, shapes and attention per stage
    speed.py        HiViT's masked forward, timed: the speed-up that running the stem on kept units only buys
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # attention
    "explicit_attention": "attention",
    "attention_maps": "attention",
    "capture_attention": "attention",
    "talking_heads": "attention",
    "layerscale": "attention",
    # flops
    "count_flops": "flops",
    "stage_shapes": "flops",
    # forward
    "evaluating": "forward",
    "example_input": "forward",
    "removing_hooks": "forward",
    "keep_first": "forward",
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
    "StageRow": "report",
    "Anatomy": "report",
    "anatomy": "report",
    "format_report": "report",
    # speed
    "masked_forward_times": "speed",
    # layout
    "Stage": "layout",
    "stages": "layout",
    "param_table": "layout",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
