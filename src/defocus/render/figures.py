"""Qualitative SYNDOF figure: sharp input, depth, sigma map, rendered image, binary map."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from defocus.io.atomic import atomic_path

COLUMNS = ("input (sharp)", "depth [m]", "sigma [px]", "rendered", "binary (white = blurred)")


def make_figure(samples: Sequence[Mapping], out_png: str | os.PathLike) -> None:
    """Write a grid with one row per sample.

    Parameters
    ----------
    samples : sequence of mapping
        Each has ``image`` (sharp uint8 RGB) and the keys of
        :func:`defocus.render.syndof.render_sample` (``blurred``, ``depth``, ``sigma``,
        ``binary``; ``params`` optional, used for the row title).
    out_png : path
        Output image (written atomically).
    """
    if not samples:
        raise ValueError("make_figure needs at least one sample, got none")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(samples)
    fig, axes = plt.subplots(n, 5, figsize=(15, 2.6 * n), squeeze=False)
    for r, s in enumerate(samples):
        panels = (
            (s["image"], None),
            (s["depth"], "viridis"),
            (s["sigma"], "magma"),
            (s["blurred"], None),
            (np.asarray(s["binary"], dtype=np.uint8), "gray"),
        )
        for c, (arr, cmap) in enumerate(panels):
            ax = axes[r, c]
            im = ax.imshow(
                arr,
                cmap=cmap,
                vmin=0 if cmap == "gray" else None,
                vmax=1 if cmap == "gray" else None,
            )
            if cmap in ("viridis", "magma"):
                fig.colorbar(im, ax=ax, fraction=0.035)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(COLUMNS[c], fontsize=9)
        p = s.get("params") or {}
        if p:
            axes[r, 0].set_ylabel(
                f"f={p.get('focal_length_mm', 0):g}mm N={p.get('f_number', 0):.2g}\n"
                f"focus={p.get('focus_m', 0):.2g}m",
                fontsize=8,
            )
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
