"""Pictures of what :mod:`kit.anatomy` reads off a model: parameters per stage, the patch grids, attention maps,
LayerScale and the talking-heads matrices.

Every function returns a matplotlib ``Figure`` made without pyplot, so no global figure state is touched:
the functions are safe in notebooks and in headless runs, and a notebook shows a figure with
:func:`kit.workshop.show_figure` (``display(fig)`` of a plain Figure can come out as text: see there).
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
from matplotlib.patches import Patch

from kit.anatomy import param_table

__all__ = [
    "plot_param_table",
    "plot_patch_grid",
    "plot_attention_maps",
    "plot_layerscale",
    "plot_talking_heads",
]


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def plot_param_table(rows: Sequence[dict] | nn.Module, log: bool = False) -> Figure:
    """Horizontal bars of parameters per stage (from :func:`kit.anatomy.param_table` rows or a model)."""
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


def _grid(n: int) -> tuple[int, int] | None:
    side = int(round(math.sqrt(n)))
    return (side, side) if side * side == n else None


def _to_display(image: torch.Tensor):
    img = image.detach().float().cpu()
    img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-12)
    return img.permute(1, 2, 0).numpy() if img.ndim == 3 else img.numpy()


def plot_attention_maps(maps: dict[str, torch.Tensor], blocks: Sequence[str] | None = None, sample: int = 0,
                        query: int | None = None, image: torch.Tensor | None = None) -> Figure:
    """One row per block, one panel per head: where a query token looks, drawn on the token grid.

    ``maps`` is what :func:`kit.anatomy.attention_maps` returns. For class attention (one query) the query
    is the class token and its weight on itself is left out (given in the panel title); for self-attention
    ``query`` picks the token (default: the centre one). ``image`` (C, H, W), if given, is drawn in the
    first column.
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
            ax.imshow(w[i, q, prefix:].reshape(grid).numpy(), cmap="viridis")
            extra = f" cls {w[i, q, 0]:.2f}" if prefix else ""
            ax.set_title(f"head {i}{extra}", fontsize=7)
        axes[r][0 if image is None else 1].set_ylabel(block, fontsize=8)
    return fig


def plot_layerscale(rows: Sequence[dict]) -> Figure:
    """Left: mean |gamma| per block (log scale); right: each branch's size relative to the stream
    (``rows`` from :func:`kit.anatomy.layerscale`)."""
    rows = list(rows)
    fig = _figure(10, 3.2)
    left, right = fig.subplots(1, 2)
    x = list(range(len(rows)))
    names = [r["block"] for r in rows]
    for key, marker in (("gamma_1_mean", "o"), ("gamma_2_mean", "s")):
        pts = [(i, r[key]) for i, r in enumerate(rows) if r.get(key) is not None]
        if pts:
            left.plot(*zip(*pts), marker=marker, label=key.replace("_mean", " (attn)" if "1" in key else " (mlp)"))
    left.set_yscale("log")
    left.set_title("LayerScale: mean |gamma|", fontsize=9)
    for key, marker in (("attn_ratio", "o"), ("mlp_ratio", "s")):
        pts = [(i, r[key]) for i, r in enumerate(rows) if r.get(key) is not None]
        if pts:
            right.plot(*zip(*pts), marker=marker, label=key.replace("_ratio", " branch"))
    right.set_yscale("log")
    right.set_title("||branch|| / ||stream|| per token", fontsize=9)
    for ax in (left, right):
        ax.set_xticks(x, names, rotation=90, fontsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def plot_talking_heads(rows: Sequence[dict], blocks: Sequence[int] | None = None) -> Figure:
    """The proj_l (before softmax) and proj_w (after softmax) head-mixing matrices of chosen blocks
    (``rows`` from :func:`kit.anatomy.talking_heads`)."""
    rows = list(rows)
    if not rows:
        raise ValueError("this model has no talking-heads attention")
    chosen = [rows[i] for i in blocks] if blocks is not None else rows
    fig = _figure(1.9 * len(chosen) + 0.8, 4.0)
    axes = fig.subplots(2, len(chosen), squeeze=False)
    for c, row in enumerate(chosen):
        for r, key in enumerate(("proj_l", "proj_w")):
            w = torch.tensor(row[key]).numpy()
            lim = float(abs(w).max()) or 1.0
            ax = axes[r][c]
            im = ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{row['block']}\n{key} |W-I| {row[key + '_dist_identity']:.2f}", fontsize=7)
        fig.colorbar(im, ax=axes[:, c].tolist(), shrink=0.6)
    return fig
