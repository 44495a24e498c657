"""Joint weighted median filter, deterministic (the last step of the DHDE release).

The DHDE release smooths its propagated defocus map with ``jointWMF(dnsImg, rgfImg, rWMF = 5,
sWMFRng = 0.25, nIWMF = 256, nFWMF = 256, iterWMF = 3, 'exp')``
(zzangjinsun/DHDE_CVPR17 ``DHDE_defocus_estimation.m``, ``ParameterSetting.m``), the filter
of Zhang, Xu and Jia, "100+ Times Faster Weighted Median Filter", CVPR 2014. Its definition:

    out(p) = the weighted median of the values I(q), q in the (2r+1) x (2r+1) window of p
             (clipped at the image border), with weights w(p, q) = exp(-|F(p) - F(q)|^2 / (2 s^2))

where ``F`` is the guide (feature) image. ``jointWMF.m`` first maps a non-uint8 guide to
0..255 with its global min and max and scales ``s`` by the same factor, so ``s`` is in units of
the guide's range; :func:`joint_weighted_median` does the same on [0, 1].

This is the exact filter, computed directly; the release's C++ reaches it approximately and
with two reproducibility problems, both avoided here:

* it quantises the input to ``nI`` = 256 adaptive levels and clusters the 3-channel guide into
  ``nF`` = 256 colours by k-means on 6-bit colours, seeded by OpenCV's global RNG, so one image
  can give different maps in one process (``jointWMF.h``, ``featureIndexing``);
* its sliding cut point returns the lower or the upper weighted median depending on the scan
  direction (``filterCore``); here it is always the lower one defined below.

OpenCV's ``ximgproc.weightedMedianFilter`` implements the same paper but is not deterministic
(identical input gave maps up to 0.12 px apart), which would make tables irreproducible.
"""

from __future__ import annotations

import numpy as np


def _normalised_guide(guide: np.ndarray) -> np.ndarray:
    """(H, W, C) float64 guide mapped to [0, 1] by its global min and max (``jointWMF.m``)."""
    g = np.asarray(guide, dtype=np.float64)
    if g.ndim == 2:
        g = g[..., None]
    lo, hi = float(g.min()), float(g.max())
    if hi - lo > 0:
        g = (g - lo) / (hi - lo)
    return g


def weighted_median_once(
    values: np.ndarray, guide: np.ndarray, radius: int, sigma: float, chunk_rows: int = 32
) -> np.ndarray:
    """One pass of the joint weighted median over ``values`` (H, W) guided by ``guide``
    (H, W, C), already normalised. See :func:`joint_weighted_median`."""
    h, w = values.shape
    r = int(radius)
    k = 2 * r + 1
    inv = -0.5 / float(sigma) ** 2
    # neighbours outside the image: value +inf (sorts last) and weight 0
    vpad = np.pad(values.astype(np.float32), r, constant_values=np.inf)
    gpad = np.pad(guide, ((r, r), (r, r), (0, 0)), mode="edge")
    inside = np.pad(np.ones((h, w), bool), r, constant_values=False)
    out = np.empty((h, w), np.float32)
    offsets = [(dy, dx) for dy in range(k) for dx in range(k)]
    for y0 in range(0, h, chunk_rows):
        y1 = min(y0 + chunk_rows, h)
        centre = guide[y0:y1]  # (n_rows, W, C)
        vals = np.empty((y1 - y0, w, len(offsets)), np.float32)
        wts = np.empty((y1 - y0, w, len(offsets)), np.float32)
        for j, (dy, dx) in enumerate(offsets):
            nb = gpad[y0 + dy : y1 + dy, dx : dx + w]
            d2 = np.sum((nb - centre) ** 2, axis=2)
            wts[..., j] = np.exp(inv * d2) * inside[y0 + dy : y1 + dy, dx : dx + w]
            vals[..., j] = vpad[y0 + dy : y1 + dy, dx : dx + w]
        vals = vals.reshape(-1, len(offsets))
        wts = wts.reshape(-1, len(offsets))
        # the order among equal values cannot change the result (they share one value and
        # the cumulative weight before them), so the faster unstable sort is used
        order = np.argsort(vals, axis=1)
        sv = np.take_along_axis(vals, order, axis=1)
        cw = np.cumsum(np.take_along_axis(wts, order, axis=1), axis=1)
        # first sorted position whose cumulative weight reaches half of the window's weight
        pos = np.sum(cw < 0.5 * cw[:, -1:], axis=1)
        out[y0:y1] = sv[np.arange(len(sv)), pos].reshape(y1 - y0, w)
    return out


def joint_weighted_median(
    values: np.ndarray,
    guide: np.ndarray,
    radius: int = 5,
    sigma: float = 0.25,
    iterations: int = 3,
) -> np.ndarray:
    """Joint weighted median of ``values`` (H, W) guided by ``guide`` (H, W) or (H, W, C).

    ``out(p)`` is the smallest value ``v`` of the window of ``p`` whose cumulative weight
    ``sum_{q : I(q) <= v} w(p, q)`` reaches half of the window's total weight, with
    ``w(p, q) = exp(-|F(p) - F(q)|^2 / (2 sigma^2))`` on the guide mapped to [0, 1] by its
    global min and max; the window is the (2 radius + 1)^2 square clipped at the border.
    ``iterations`` passes re-filter the output with the same guide (``iter`` of
    ``jointWMF``). Defaults: the DHDE release (``rWMF = 5``, ``sWMFRng = 0.25``,
    ``iterWMF = 3``, ``ParameterSetting.m``). Deterministic; float32 output.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D map, got shape {values.shape}")
    if np.asarray(guide).shape[:2] != values.shape:
        raise ValueError(f"guide {np.asarray(guide).shape} does not match values {values.shape}")
    if int(radius) < 0 or float(sigma) <= 0 or int(iterations) < 0:
        raise ValueError(
            f"need radius >= 0, sigma > 0, iterations >= 0; got {radius}, {sigma}, {iterations}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    g = _normalised_guide(guide)
    out = values.astype(np.float32)
    for _ in range(int(iterations)):
        out = weighted_median_once(out, g, int(radius), float(sigma))
    return out.astype(np.float32)
