"""Pictures of what :mod:`kit.anatomy` reads off a model: parameters per stage, the patch grids, HiViT's patch
merge, which features a local change reaches, masked units, attention maps, LayerScale and the talking-heads matrices.

Every function returns a matplotlib ``Figure`` made without pyplot, so no global figure state is touched:
the functions are safe in notebooks and in headless runs, and a notebook shows a figure with
:func:`kit.workshop.notebook.show_figure` (``display(fig)`` of a plain Figure can come out as text: see there).
Each figure is laid out by one engine, constrained layout, chosen when the figure is made; calling
``tight_layout()`` on such a figure would make matplotlib swap engines and warn.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from kit.anatomy.layout import param_table

__all__ = [
    "plot_param_table",
    "plot_patch_grid",
    "plot_patch_merge",
    "plot_locality",
    "plot_masked_units",
    "plot_attention_maps",
    "plot_layerscale",
    "plot_talking_heads",
    "plot_architecture",
]


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def plot_param_table(rows: Sequence[dict] | nn.Module, log: bool = False) -> Figure:
    """Horizontal bars of parameters per stage (from :func:`kit.anatomy.layout.param_table` rows or a model)."""
    rows = param_table(rows) if isinstance(rows, nn.Module) else list(rows)
    fig = _figure(7, 0.28 * len(rows) + 1.2)
    ax = fig.add_subplot()
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    colors = {k: f"C{i}" for i, k in enumerate(kinds)}
    y = range(len(rows))
    ax.barh(list(y), [r["params"] for r in rows], color=[colors[r["kind"]] for r in rows])
    ax.set_yticks(list(y), [r["name"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        ax.text(r["params"], i, f" {r['share']:.1%}", va="center", fontsize=7)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], fontsize=7, loc="lower right")
    return fig


def _grid_lines(ax, step: int, extent: int, **style) -> None:
    """Horizontal and vertical lines every ``step`` pixels, on the pixel edges (imshow centres pixels)."""
    for pos in range(0, extent + 1, step):
        ax.axhline(pos - 0.5, **style)
        ax.axvline(pos - 0.5, **style)


def plot_patch_grid(image, patch_size: int = 16, inner_patches: int = 4) -> Figure:
    """An image with CaiT's main-token grid (left) and HiViT's grid of inner patches inside each main token
    (right)."""
    img = np.asarray(image)
    extent = max(img.shape[:2])
    inner = patch_size // inner_patches
    fig = _figure(9, 4.6)
    left, right = fig.subplots(1, 2)
    titles = (f"main tokens: {patch_size}x{patch_size} px (CaiT, HiViT's main stage)",
              f"HiViT stem: {inner_patches}x{inner_patches} inner patches of {inner}x{inner} px per token")
    for ax, title in zip((left, right), titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    _grid_lines(right, inner, extent, color="tab:orange", lw=0.5, alpha=0.8)
    for ax in (left, right):
        _grid_lines(ax, patch_size, extent, color="tab:red", lw=1.5)
    return fig


def plot_patch_merge(source: torch.Tensor, changed: torch.Tensor, grid: Sequence[int]) -> Figure:
    """HiViT's patch merge in two panels. Left: one main token's inner grid, each inner patch coloured by the merged
    patch it ends up in and labelled with the channel block it fills (``source`` (h/2, w/2, 4): the inner-patch
    index found at each merged patch and channel block ``x0..x3``, i.e. the merge's stacking applied to the
    indices). Right:
    how much each main token's merged output changed (``changed``, one value per main token, laid out on ``grid``)
    when only one main token's input was changed."""
    src = source.detach().cpu().long()
    oh, ow, blocks = src.shape
    h, w = 2 * oh, 2 * ow
    fig = _figure(8.4, 3.6)
    left, right = fig.subplots(1, 2)
    colour = np.zeros((h, w))
    for i in range(oh):
        for j in range(ow):
            for k in range(blocks):
                idx = int(src[i, j, k])
                r, c = divmod(idx, w)
                colour[r, c] = i * ow + j
                left.text(c, r, f"{idx}\n-> ({i},{j})\nx{k}", ha="center", va="center", fontsize=7)
    left.imshow(colour, cmap="Pastel1", vmin=0, vmax=8)
    _grid_lines(left, 1, h, color="white", lw=1)
    left.set_title(f"one main token: {h}x{w} inner patches -> {oh}x{ow} (channel blocks x0..x{blocks - 1})",
                   fontsize=9)
    grid = tuple(grid)
    change = changed.detach().float().cpu().reshape(grid).numpy()
    right.imshow(change > 0, cmap="Reds", vmin=0, vmax=1.5)
    for (r, c), v in np.ndenumerate(change):
        right.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=8)
    _grid_lines(right, 1, max(grid), color="black", lw=1)
    right.set_title("max |change| of each main token's output\nwhen one main token's input changes", fontsize=9)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_locality(changes: dict[str, torch.Tensor], unit_px: dict[str, int], image: torch.Tensor | None = None,
                  box: Sequence[int] | None = None) -> Figure:
    """Which features a local change of the input reaches: one panel per ``changes`` entry, a 2-D map of how much
    each feature position changed (white: not at all), with the unit boundaries every ``unit_px[label]``
    positions drawn. ``image`` (C, H, W), if given, comes first, with the changed region ``box`` =
    (top, left, height, width) outlined."""
    from matplotlib.patches import Rectangle

    panels = len(changes) + (image is not None)
    fig = _figure(3.2 * panels, 3.4)
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    if image is not None:
        ax = axes.pop(0)
        ax.imshow(_to_display(image))
        if box is not None:
            top, left, height, width = box
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, color="red", lw=2))
        ax.set_title("input: one unit changed", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, (label, change) in zip(axes, changes.items()):
        c = change.detach().float().cpu().numpy()
        ax.imshow(c > 0, cmap="Reds", vmin=0, vmax=1.3)
        _grid_lines(ax, unit_px[label], max(c.shape), color="black", lw=1.2)
        reached = int((c > 0).sum())
        ax.set_title(f"{label}\n{reached} of {c.size} positions changed", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_masked_units(image, ids_keep: torch.Tensor, grid: Sequence[int], times: dict[float, float]) -> Figure:
    """Left: ``image`` with the masked units greyed out (``ids_keep``: the kept unit indices, row-major on ``grid``);
    right: forward time per mask ratio (``times`` from :func:`kit.anatomy.speed.masked_forward_times`)."""
    img = np.asarray(image).astype(float) / 255.0
    gh, gw = tuple(grid)
    ph, pw = img.shape[0] // gh, img.shape[1] // gw
    kept = np.zeros(gh * gw, dtype=bool)
    kept[ids_keep.detach().cpu().long().numpy()] = True
    shown = img.copy()
    for unit in np.flatnonzero(~kept):
        r, c = divmod(int(unit), gw)
        shown[r * ph:(r + 1) * ph, c * pw:(c + 1) * pw] = 0.5
    fig = _figure(9, 3.8)
    left, right = fig.subplots(1, 2, width_ratios=(1.1, 1))
    left.imshow(shown)
    _grid_lines(left, ph, img.shape[0], color="white", lw=0.4)
    left.set_title(f"{int(kept.sum())} of {kept.size} units kept ({1 - kept.mean():.0%} masked)", fontsize=9)
    left.set_xticks([])
    left.set_yticks([])
    ratios = sorted(times)
    right.bar([f"{r:.0%} masked" for r in ratios], [times[r] * 1000 for r in ratios], color="tab:blue")
    right.set_ylabel("forward time (ms)")
    if len(ratios) > 1:
        right.set_title(f"{times[ratios[0]] / times[ratios[-1]]:.2f}x faster on the kept units", fontsize=9)
    return fig


def _grid(n: int) -> tuple[int, int] | None:
    side = int(round(math.sqrt(n)))
    return (side, side) if side * side == n else None


def _to_display(image: torch.Tensor):
    img = image.detach().float().cpu()
    img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-12)
    return img.permute(1, 2, 0).numpy() if img.ndim == 3 else img.numpy()


def plot_attention_maps(maps: dict[str, torch.Tensor], blocks: Sequence[str] | None = None, sample: int = 0,
                        query: int | None = None, image: torch.Tensor | None = None,
                        vmax: float | None = None) -> Figure:
    """One row per block, one panel per head: where a query token looks, drawn on the token grid.

    ``maps`` is what :func:`kit.anatomy.attention.attention_maps` returns. For class attention (one query) the query
    is the class token and its weight on itself is left out (given in the panel title); for self-attention
    ``query`` picks the token (default: the centre one). ``image`` (C, H, W), if given, is drawn in the
    first column. ``vmax``: one colour scale, from 0 to ``vmax``, for every panel (so that nearly uniform weights
    look uniform); None scales each panel to its own range.
    """
    blocks = list(blocks) if blocks is not None else list(maps)
    if not blocks:
        raise ValueError("no attention maps to plot")
    heads = max(maps[b].shape[1] for b in blocks)
    cols = heads + (image is not None)
    fig = _figure(1.6 * cols + 0.6, 1.7 * len(blocks) + 0.3)
    axes = fig.subplots(len(blocks), cols, squeeze=False)
    for r, block in enumerate(blocks):
        w = maps[block][sample].float().cpu()  # (H, Nq, Nk)
        h, nq, nk = w.shape
        prefix = nk - nq if nq > 1 else (1 if _grid(nk - 1) else 0)  # class attention: skip the cls key
        grid = _grid(nk - prefix) or (1, nk - prefix)
        q = 0 if nq == 1 else (query if query is not None else (nq - prefix) // 2 + grid[1] // 2)
        if image is not None:
            axes[r][0].imshow(_to_display(image))
            axes[r][0].set_title("image", fontsize=8)
        for i in range(heads):
            ax = axes[r][i + (image is not None)]
            ax.set_xticks([])
            ax.set_yticks([])
            if i >= h:
                ax.set_visible(False)
                continue
            scale = {} if vmax is None else {"vmin": 0.0, "vmax": vmax}
            ax.imshow(w[i, q, prefix:].reshape(grid).numpy(), cmap="viridis", **scale)
            extra = f" cls {w[i, q, 0]:.2f}" if prefix else ""
            ax.set_title(f"head {i}{extra}", fontsize=7)
        axes[r][0 if image is None else 1].set_ylabel(block, fontsize=8)
    return fig


def _labelled(rows) -> dict[str, list]:
    """``{label: rows}`` from a mapping of labelled row lists, or ``{"": rows}`` from one list."""
    if isinstance(rows, dict):
        return {str(k): list(v) for k, v in rows.items()}
    return {"": list(rows)}


def plot_layerscale(rows: Sequence[dict] | dict[str, Sequence[dict]]) -> Figure:
    """Left: mean |gamma| per block (log scale); right: each branch's size relative to the stream
    (``rows`` from :func:`kit.anatomy.attention.layerscale`, or ``{label: rows}`` to draw several models of the same
    layout over one another, e.g. freshly initialised and trained)."""
    runs = _labelled(rows)
    fig = _figure(10, 3.4)
    left, right = fig.subplots(1, 2)
    first = next(iter(runs.values()))
    x = list(range(len(first)))
    names = [r["block"] for r in first]
    for n, (label, run) in enumerate(runs.items()):
        style = dict(ls="-" if n == 0 else "--", alpha=1.0 if n == len(runs) - 1 else 0.6)
        prefix = f"{label}: " if label else ""
        for ax, keys in ((left, ("gamma_1_mean", "gamma_2_mean")), (right, ("attn_ratio", "mlp_ratio"))):
            for key, marker in zip(keys, ("o", "s")):
                pts = [(i, r[key]) for i, r in enumerate(run) if r.get(key) is not None]
                if pts:
                    what = {"gamma_1_mean": "gamma_1 (attn)", "gamma_2_mean": "gamma_2 (mlp)",
                            "attn_ratio": "attn branch", "mlp_ratio": "mlp branch"}[key]
                    ax.plot(*zip(*pts), marker=marker, color="C0" if "1" in key or "attn" in key else "C1",
                            label=prefix + what, **style)
    left.set_yscale("log")
    left.set_title("LayerScale: mean |gamma|", fontsize=9)
    right.set_yscale("log")
    right.set_title("||branch|| / ||stream|| per token", fontsize=9)
    for ax in (left, right):
        ax.set_xticks(x, names, rotation=90, fontsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def plot_talking_heads(rows: Sequence[dict] | dict[str, Sequence[dict]], blocks: Sequence[int] | None = None) -> Figure:
    """The proj_l (before softmax) and proj_w (after softmax) head-mixing matrices of chosen blocks
    (``rows`` from :func:`kit.anatomy.attention.talking_heads`, or ``{label: rows}``: two rows of panels per label, e.g.
    freshly initialised above trained)."""
    runs = _labelled(rows)
    if not any(runs.values()):
        raise ValueError("this model has no talking-heads attention")
    chosen = {label: [run[i] for i in blocks] if blocks is not None else run for label, run in runs.items()}
    cols = max(len(run) for run in chosen.values())
    fig = _figure(1.9 * cols + 0.8, 2.0 * len(chosen) * 2 + 0.2)
    axes = fig.subplots(2 * len(chosen), cols, squeeze=False)
    for n, (label, run) in enumerate(chosen.items()):
        for c, row in enumerate(run):
            for r, key in enumerate(("proj_l", "proj_w")):
                w = torch.tensor(row[key]).numpy()
                lim = float(abs(w).max()) or 1.0
                ax = axes[2 * n + r][c]
                im = ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.set_xticks([])
                ax.set_yticks([])
                title = f"{label}: " if label else ""
                ax.set_title(f"{title}{row['block']}\n{key} |W-I| {row[key + '_dist_identity']:.2f}", fontsize=7)
                fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


_STAGE_COLOURS = {"patch embedding": "#bbbbbb", "embedding": "#dddddd", "MLP block": "#9ecae1", "merge": "#fdae6b",
                  "self-attention": "#bcbddc", "class attention": "#fc9272", "norm": "#dddddd", "classifier": "#bbbbbb"}


def _shape(shape) -> str:
    return "×".join(str(n) for n in list(shape)[1:]) if shape else ""


def plot_architecture(report) -> Figure:
    """A block diagram of a model, read off its real module tree (:func:`kit.anatomy.report.anatomy`): one box per
    stage,
    left to right, with its name, kind and output shape (batch left out); a stage that takes a second input (CaiT's
    class token) gets it as an arrow from above."""
    stages = report.stages
    fig = _figure(max(8.0, 1.25 * len(stages)), 2.6)
    ax = fig.add_subplot()
    for i, s in enumerate(stages):
        kind = s.kind.split(" (")[0]
        colour = _STAGE_COLOURS.get(kind, "#eeeeee")
        box = FancyBboxPatch((i + 0.06, 0.0), 0.88, 1.0, boxstyle="round,pad=0.02", fc=colour, ec="black", lw=0.6)
        ax.add_patch(box)
        ax.text(i + 0.5, 0.72, s.name.replace("+", "+\n"), ha="center", va="center", fontsize=7, weight="bold")
        ax.text(i + 0.5, 0.42, s.kind.replace(" (", "\n("), ha="center", va="center", fontsize=6.5)
        ax.text(i + 0.5, 0.12, _shape(s.output) if s.output else "(added)", ha="center", va="center", fontsize=6.5)
        if i:
            ax.annotate("", (i + 0.06, 0.5), (i - 0.06, 0.5), arrowprops=dict(arrowstyle="->", lw=0.8))
        if len(s.inputs) > 1 and not any(len(t.inputs) > 1 for t in stages[:i]):  # where the class token joins
            fig.supxlabel(f"from {s.name} on, each block reads the patch tokens ({_shape(s.inputs[0])}, unchanged) "
                          "and updates only the class token", fontsize=7)
            ax.annotate(f"class token\n{_shape(s.inputs[1])}", (i + 0.5, 1.02), (i + 0.5, 1.45), ha="center",
                        fontsize=6.5, arrowprops=dict(arrowstyle="->", lw=0.8, color="C3"), color="C3")
    ax.set(xlim=(-0.05, len(stages) + 0.05), ylim=(-0.15, 1.7))
    ax.axis("off")
    size = "×".join(map(str, report.input_size))
    ax.set_title(f"{report.model}: {report.total_params:,} parameters, input {size} (output shapes without the batch)",
                 fontsize=9)
    return fig
