"""Figures: precision-recall curves, F-measure curves, qualitative grids (PNG + PDF).

Figures are drawn with :class:`matplotlib.figure.Figure` on the Agg canvas (no pyplot state,
no display needed) and written atomically. Legend labels are the table method names;
reference rows (:func:`defocus.evaluate.tables.is_reference`) are dashed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from defocus.evaluate.tables import is_reference
from defocus.io.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd


def _save(fig: Figure, out_stem: str | os.PathLike, dpi: int = 150) -> list[Path]:
    FigureCanvasAgg(fig)
    out_stem = Path(out_stem)
    paths = []
    for ext in (".png", ".pdf"):
        path = out_stem.with_name(out_stem.name + ext)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=ext[1:])
        paths.append(path)
    return paths


def _style(method: str, index: int) -> dict:
    """Line style of the ``index``-th method: 20 distinct colours (tab20), then the same
    colours dotted; reference rows dashed."""
    import matplotlib

    colour = matplotlib.colormaps["tab20"](index % 20)
    if is_reference(method):
        linestyle = "--"
    else:
        linestyle = "-" if index < 20 else ":"
    return {"linestyle": linestyle, "linewidth": 1.5, "color": colour}


def _legend(ax, n: int) -> None:
    """Legend inside for a few methods, outside on the right for many."""
    if n <= 8:
        ax.legend(fontsize=7, loc="lower left")
    else:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _check_curves(method: str, curves: Mapping[str, np.ndarray], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in curves]
    if missing:
        raise ValueError(f"curves of {method!r} lack {missing}; have {sorted(curves)}")


def pr_curves(
    curves_by_method: Mapping[str, Mapping[str, np.ndarray]],
    dataset: str,
    out_stem: str | os.PathLike,
) -> list[Path]:
    """Precision-recall curves of all methods on one dataset; the max-F point is marked.

    Thresholds where P and R are both 0 (no pixel predicted blurred in any image, e.g.
    ``t = 1`` for most maps) are left out, so the curve does not drop to the origin.

    Parameters
    ----------
    curves_by_method : dict
        Method name -> curves dict (``precision``, ``recall``, ``f``) as written to
        ``results/curves/{method}/{dataset}.npz``.
    dataset : str
        Used in the title.
    out_stem : path
        Writes ``out_stem.png`` and ``out_stem.pdf``.
    """
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    for i, (method, c) in enumerate(curves_by_method.items()):
        _check_curves(method, c, ("precision", "recall", "f"))
        p, r = np.asarray(c["precision"]), np.asarray(c["recall"])
        keep = (p > 0) | (r > 0)  # (0, 0) = nothing predicted anywhere; not drawn
        (line,) = ax.plot(r[keep], p[keep], label=method, **_style(method, i))
        k = int(np.argmax(c["f"]))
        ax.plot(c["recall"][k], c["precision"][k], "o", color=line.get_color(), markersize=4)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"Precision-recall, {dataset} (dot = max F)")
    ax.grid(alpha=0.3)
    _legend(ax, len(curves_by_method))
    return _save(fig, out_stem)


def f_curves(
    curves_by_method: Mapping[str, Mapping[str, np.ndarray]],
    dataset: str,
    out_stem: str | os.PathLike,
    beta2: float = 0.3,
) -> list[Path]:
    """F-measure against threshold for all methods on one dataset (PNG + PDF)."""
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    for i, (method, c) in enumerate(curves_by_method.items()):
        _check_curves(method, c, ("thresholds", "f"))
        ax.plot(c["thresholds"], c["f"], label=method, **_style(method, i))
    ax.set(xlabel="threshold", ylabel=f"F (beta² = {beta2:g})", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"F-measure vs threshold, {dataset}")
    ax.grid(alpha=0.3)
    _legend(ax, len(curves_by_method))
    return _save(fig, out_stem)


def qualitative_grid(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, Mapping[str, np.ndarray]]],
    out_stem: str | os.PathLike,
    cell_inches: float = 1.6,
) -> list[Path]:
    """A grid: one row per image with the image, its GT and each method's map (1 = white).

    Parameters
    ----------
    rows : list of (id, image_rgb, gt, {method: map})
        ``image_rgb`` uint8 (H, W, 3); ``gt`` and maps (H, W) in [0, 1] (or uint8 / bool
        for the GT). The method columns follow the first row's dict order.
    out_stem : path
        Writes ``out_stem.png`` and ``out_stem.pdf``.
    """
    if not rows:
        raise ValueError("qualitative_grid needs at least one row")
    methods = list(rows[0][3])
    ncol = 2 + len(methods)
    fig = Figure(figsize=(cell_inches * ncol, cell_inches * len(rows)))
    axes = fig.subplots(len(rows), ncol, squeeze=False)
    for r, (image_id, image, gt, maps) in enumerate(rows):
        missing = [m for m in methods if m not in maps]
        if missing:
            raise ValueError(f"row {image_id!r} lacks maps for {missing}")
        gt = np.asarray(gt)
        gt_show = gt / 255.0 if gt.dtype == np.uint8 else gt.astype(np.float32)
        panels = [(image, None, "image"), (gt_show, "gray", "GT")]
        panels += [(np.asarray(maps[m]), "gray", m) for m in methods]
        for c, (data, cmap, title) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(data, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=7)
            if c == 0:
                ax.set_ylabel(str(image_id), fontsize=7)
    fig.subplots_adjust(wspace=0.03, hspace=0.03)
    return _save(fig, out_stem)


def pick_diverse(ids: Sequence[str], n: int) -> list[str]:
    """Up to ``n`` ids for a qualitative figure, one per scene first.

    Renders of one scene share an id stem (``motorcycle_000``, ``motorcycle_001``): ids are
    grouped by the id without a trailing ``_<digits>``, the first of each group is taken in
    order, then the rest fill up to ``n``.
    """
    import re

    first, rest, seen = [], [], set()
    for i in ids:
        stem = re.sub(r"_\d+$", "", i)
        (rest if stem in seen else first).append(i)
        seen.add(stem)
    return (first + rest)[: max(0, n)]


def protocols_figure(
    table: pd.DataFrame, presets: Sequence[str], out_stem: str | os.PathLike
) -> list[Path]:
    """Each method's rank under each preset, methods as lines across the presets.

    One panel per dataset of :func:`defocus.evaluate.tables.protocols_table`; the x axis
    lists the presets in ``presets`` order (with each preset's metric), the y axis the rank
    (1 = best, at the top). Reference rows are unranked and not drawn; a method without a
    value under a preset leaves a gap.
    """
    datasets = list(dict.fromkeys(table["dataset"]))
    if not datasets:
        raise ValueError("protocols_figure: the table has no rows")
    fig = Figure(figsize=(1.4 * len(presets) + 3.5, 3.6 * len(datasets)))
    x = np.arange(len(presets))
    for k, dataset in enumerate(datasets):
        ax = fig.add_subplot(len(datasets), 1, k + 1)
        d = table[(table["dataset"] == dataset) & ~table["reference"].astype(bool)]
        methods = list(dict.fromkeys(d["method"]))
        for i, method in enumerate(methods):
            ranks = d[d["method"] == method].set_index("preset")["rank"]
            y = [float(ranks.get(p, np.nan)) for p in presets]
            ax.plot(x, y, marker="o", markersize=3, label=method, **_style(method, i))
        metrics = [str(d.loc[d["preset"] == p, "metric"].iloc[0]) if (d["preset"] == p).any()
                   else "" for p in presets]  # fmt: skip
        ax.set_xticks(x, [f"{p}\n[{m}]" for p, m in zip(presets, metrics, strict=True)],
                      fontsize=7, rotation=20)  # fmt: skip
        ax.invert_yaxis()
        ax.set_ylabel("rank (1 = best)")
        ax.set_title(f"{dataset}: rank of each method under each protocol preset", fontsize=9)
        ax.grid(alpha=0.3)
        if methods:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    return _save(fig, out_stem)
