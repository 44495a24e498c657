"""Layered defocus rendering with back-to-front compositing (SYNDOF, Lee et al. CVPR'19 Sec. 3).

The scene is cut into layers of equal quantised CoC (far to near). Each layer's binary
mask and premultiplied colour are blurred with the same Gaussian (symmetric border) and
composited back to front: ``merged = (1 - m) * merged + c`` (generator ``blur_by_depth.m``
l. 52-69). The final image is ``merged / mask`` (l. 74).

Layers in front of the focal plane first get the background behind them filled in, so
that a blurred foreground edge does not mix with black. Two rules (``fill=``):

``"regionfill"`` (default) is the generator's ``inpaint_background_and_modify_merged_mask``
(``blur_by_depth.m`` l. 288-324), step by step:

1. the union ``U`` of the farther layers (l. 227-233, 64) is blurred with the current
   layer's kernel (symmetric border, l. 290); the hole is where that blur is >= 1e-3 and
   outside ``U`` (l. 291-299), whether or not the current layer covers it;
2. the accumulated colour is normalised by the accumulated mask (a zero mask taken as 1)
   and zeroed outside ``U`` (l. 303-306); each channel and the indicator of ``U`` are then
   filled in the hole by MATLAB ``regionfill`` (l. 307-312);
3. the whole accumulation is normalised (mask 1 wherever it was > 0, l. 317-320) and the
   hole takes the filled colour and the filled indicator as its mask (l. 322-323), so the
   fill fades towards the pixels no farther layer reaches.

``regionfill`` is a Laplace (membrane) interpolation: MATLAB documents it as "calculates the
discrete Laplacian over the regions and solves the Dirichlet boundary value problem"
(Image Processing Toolbox, ``regionfill`` reference page, Algorithms). The discrete form
followed here (:func:`harmonic_fill`) is that of its implementation: for each hole pixel,
``deg * x - (sum of hole neighbours) = (sum of known neighbours)`` over its 4-neighbours
inside the image, ``deg`` being their number (4 inside, 3 on an edge, 2 in a corner: a
zero-flux image border), solved by a sparse factorisation (scipy SuperLU).

``"normalized"`` is this package's earlier rule: the background extension is normalised
convolution with the layer's own kernel, ``blur(bg * U) / blur(U)``, marked opaque and
applied only where the current layer's blurred mask is non-zero.

The 2-D kernel is the outer product of two normalised 1-D Gaussians, which equals
``fspecial('gaussian', [n n], s)`` on a square window (fspecial's zeroing of taps below
``eps * max`` is not reproduced; it changes weights by < 1e-15).

Three implementations share these semantics: :func:`render_reference` (full-frame blur and
fill per layer, scipy, float64; for tests and benchmarks), and :func:`render_layered` with
``backend="numpy"`` (OpenCV 1-D filters on each layer's footprint only, float32) or
``backend="torch"`` (the same footprint crops, blurred by banded matrix products, CPU or
CUDA). Both blur a layer's mask and premultiplied colour as one 4-channel crop; the
``regionfill`` hole is found on the 8 x 8 px blocks that can hold it and solved on the
CPU (float64) for both backends.

This module holds the two renderers; the pieces live in :mod:`~defocus.render.layers`
(layer decomposition, windows, input checks), :mod:`~defocus.render.footprint` (the crops a
layer's blur touches), :mod:`~defocus.render.regionfill` (the generator's fill) and
:mod:`~defocus.render.backends` (OpenCV and torch). Their public names are re-exported here.
SciPy is imported only by :func:`render_reference` and when a fill hole is solved.
"""

from __future__ import annotations

import numpy as np

from defocus.render.backends import _NumpyOps, _TorchOps
from defocus.render.footprint import _BLOCK, _bounding_boxes, _grow2d, _layer_rects
from defocus.render.layers import (
    BACKENDS,
    FILL_EPS,
    FILLS,
    MASK_EPS,
    TAIL,
    TRUNCATE,
    _check_inputs,
    _effective_radius,
    _first_focus_index,
    decompose_layers,
    gaussian_kernel_1d,
    kernel_radius,
)
from defocus.render.physics import sigma_from_coc
from defocus.render.regionfill import _hole, _index_grid, _regionfill, harmonic_fill

__all__ = [
    "BACKENDS",
    "FILLS",
    "FILL_EPS",
    "MASK_EPS",
    "TAIL",
    "TRUNCATE",
    "decompose_layers",
    "gaussian_kernel_1d",
    "harmonic_fill",
    "kernel_radius",
    "render_layered",
    "render_reference",
]


def render_reference(
    image_f32_rgb: np.ndarray,
    coc_px: np.ndarray,
    depth_m: np.ndarray | None = None,
    sigma_formula: str = "generator",
    kernel_radius_px: int | None = None,
    truncate: float = TRUNCATE,
    fill: str = "regionfill",
) -> np.ndarray:
    """Direct layered renderer: every layer blurred and filled over the full frame (slow,
    float64), written as the generator's steps (see the module notes).

    Same semantics as :func:`render_layered`; used to test it and as the benchmark baseline.
    """
    image, coc_px = _check_inputs(image_f32_rgb, coc_px, sigma_formula, fill=fill)
    img = image.astype(np.float64)
    labels, layer_coc = decompose_layers(coc_px, depth_m)
    first_focus = _first_focus_index(layer_coc)
    h, w = labels.shape
    merged = np.zeros((h, w, 3))
    mm = np.zeros((h, w))
    union = np.zeros((h, w), dtype=bool)

    from scipy import ndimage

    def blur(a, k):
        a = ndimage.correlate1d(a, k, axis=0, mode="reflect")  # scipy reflect = symmetric
        return ndimage.correlate1d(a, k, axis=1, mode="reflect")

    for i, coc in enumerate(layer_coc):
        layer = labels == i
        mask = layer.astype(np.float64)
        k = None
        if coc > 1.0:
            s = float(sigma_from_coc(coc, sigma_formula))
            k = gaussian_kernel_1d(s, kernel_radius(s, kernel_radius_px, truncate))
            m = blur(mask, k)
            c = blur(img * mask[..., None], k)
        else:
            m, c = mask, img * mask[..., None]
        m = np.where(m < MASK_EPS, 0.0, m)
        if i > first_focus and fill == "regionfill":
            # generator l. 288-324; a sharp layer (kernel 0) blurs U to 0: an empty hole
            hole = np.zeros((h, w), dtype=bool)
            if k is not None:
                hole = (blur(union.astype(np.float64), k) >= FILL_EPS) & ~union
            norm = np.where(mm > 0, mm, 1.0)
            merged /= norm[..., None]
            mm /= norm
            if hole.any():
                known = np.concatenate([union[..., None], merged * union[..., None]], axis=2)
                vals = harmonic_fill(known, hole)
                mm[hole] = vals[:, 0]
                merged[hole] = vals[:, 1:]
        elif i > first_focus:
            nz = mm > 0
            merged[nz] /= mm[nz, None]
            mm[nz] = 1.0
            if k is not None:
                u = union.astype(np.float64)
                bu = blur(u, k)
                bmu = blur(merged * u[..., None], k)
                region = (bu >= FILL_EPS) & ~union & (m > 0)
                merged[region] = bmu[region] / bu[region, None]
                mm[region] = 1.0
        merged = (1.0 - m[..., None]) * merged + c
        mm = (1.0 - m) * mm + m
        union |= layer
    out = merged / np.where(mm > 0, mm, 1.0)[..., None]
    return out.astype(np.float32)


def render_layered(
    image_f32_rgb: np.ndarray,
    coc_px: np.ndarray,
    depth_m: np.ndarray | None = None,
    sigma_formula: str = "generator",
    backend: str = "numpy",
    device=None,
    kernel_radius_px: int | None = None,
    truncate: float = TRUNCATE,
    strip_px: int = 32,
    fill: str = "regionfill",
) -> np.ndarray:
    """Render a defocused image from a sharp one and a per-pixel CoC map (fast).

    Parameters
    ----------
    image_f32_rgb : numpy.ndarray
        ``(H, W, 3)`` float image in ``[0, 1]``.
    coc_px : numpy.ndarray
        ``(H, W)`` CoC diameter in px (quantised to 0.1 px here if it is not already).
    depth_m : numpy.ndarray, optional
        ``(H, W)`` depth used only to order layers far-to-near (see :func:`decompose_layers`).
    sigma_formula : {"generator", "paper"}
        CoC-to-sigma conversion, see :func:`defocus.render.physics.sigma_from_coc`.
    backend : {"numpy", "torch"}
        ``"numpy"``: OpenCV separable filter; ``"torch"``: depthwise conv on ``device``.
    device : str or torch.device, optional
        Torch device (``"cpu"`` default, ``"cuda"``); ignored by the numpy backend.
    kernel_radius_px : int, optional
        Fixed Gaussian window radius (the generator uses ``floor(max_coc / 2)``); default
        ``ceil(truncate * sigma)`` per layer.
    truncate : float
        Window half-width in sigmas when ``kernel_radius_px`` is None.
    strip_px : int
        Height of the output row strips the footprint is cut into (a speed knob only).
    fill : {"regionfill", "normalized"}
        Background fill under layers in front of the focal plane (see the module notes):
        the generator's Laplace interpolation (default) or normalised convolution.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float32 rendered image.

    Notes
    -----
    Each layer is processed only on its blur footprint: output row strips within the kernel
    radius of its pixels, each on the column runs its pixels (grown by the radius) need,
    planned on an 8 x 8 px occupancy grid; symmetric borders come from the full frame.
    Mask and premultiplied colour are blurred together as one 4-channel crop. Outer taps of
    a fixed window that weigh < :data:`TAIL` in total are skipped (small blurs in the
    generator's 29 x 29 window); layers with CoC <= 1 are pasted without blurring. The
    result equals the full-frame reference up to float32 rounding (measured < 1e-6; tested
    at 1e-5).

    With ``fill="regionfill"`` the hole of each front layer is found on the 8 x 8 px blocks
    that can hold it (the hole of the next front layer one layer ahead), and only its
    4-connected components holding a pixel whose value is read later are solved: pixels of
    the layer itself, or pixels outside the next front layer's hole. The others are filled
    again by that next layer from data that do not include them, so skipping them changes
    nothing. The sparse systems are solved in float64 on the CPU for both backends.
    """
    image, coc_px = _check_inputs(image_f32_rgb, coc_px, sigma_formula, backend, fill)
    if strip_px < 1:
        raise ValueError(f"strip_px must be >= 1, got {strip_px}")
    labels, layer_coc = decompose_layers(coc_px, depth_m)
    n_layers = len(layer_coc)
    first_focus = _first_focus_index(layer_coc)
    h, w = labels.shape
    kernels = [None] * n_layers
    for i, coc in enumerate(layer_coc):
        if coc > 1.0:
            sig = float(sigma_from_coc(coc, sigma_formula))
            r = kernel_radius(sig, kernel_radius_px, truncate)
            k = gaussian_kernel_1d(sig, r)
            re = _effective_radius(k)
            kernels[i] = (k[r - re : r + re + 1], re)
    pad = max([1] + [kr[1] for kr in kernels if kr is not None])
    rgb1 = np.empty((h, w, 4), np.float32)
    rgb1[..., 0] = 1.0
    rgb1[..., 1:] = image
    ops = (_NumpyOps if backend == "numpy" else _TorchOps)(rgb1, labels, pad, strip_px, device)
    boxes = _bounding_boxes(labels, n_layers)
    b = _BLOCK
    yy, xx = np.indices((h, w), sparse=True)
    occ = np.zeros((n_layers, -(-h // b), -(-w // b)), dtype=bool)
    occ[labels, yy // b, xx // b] = True
    if fill == "regionfill":  # blocks holding a pixel of layer i or nearer, and of the far union
        rest = np.logical_or.accumulate(occ[::-1], axis=0)[::-1]
        far = np.zeros(occ.shape[1:], dtype=bool)
        hole_idx = _index_grid(h, w)
        mark = np.zeros((h, w), dtype=bool)
        nxt = None  # the next front layer's hole, found one layer ahead
    # row bands (strip_px high) touched since the last normalisation: column range
    n_bands = -(-h // strip_px)
    dirty = np.empty((n_bands, 2), dtype=np.int64)
    dirty[:] = (w, 0)

    for i in range(n_layers):
        box = boxes[i]
        if box is None:  # label unused (cannot happen with decompose_layers)
            continue
        front = i > first_focus
        if front:  # make the background opaque where it was touched since the last time
            for band in np.flatnonzero(dirty[:, 1] > dirty[:, 0]).tolist():
                y0, y1 = band * strip_px, min(h, (band + 1) * strip_px)
                ops.normalise(y0, y1, int(dirty[band, 0]), int(dirty[band, 1]))
            dirty[:] = (w, 0)
        if kernels[i] is None:  # sharp layer: its pixels replace the state
            rects = [(box[0].start, box[0].stop, box[1].start, box[1].stop)]
            ops.paste(i, *rects[0])
        elif fill == "regionfill":
            k, r = kernels[i]
            rects = []
            if front:  # fill the whole hole first: the layer's blur does not read the state
                if nxt is None:
                    nxt = _hole(labels, i, k, r, rest[i] & _grow2d(far, -(-r // b)), strip_px)
                ys, xs = nxt
                nxt = None
                if ys.size:
                    # values the generator writes here matter where the layer itself is or
                    # where the next layer's fill does not overwrite them
                    needed = labels[ys, xs] == i
                    if i + 1 < n_layers and kernels[i + 1] is not None:
                        k1, r1 = kernels[i + 1]
                        far1 = far | occ[i]
                        nxt = _hole(
                            labels,
                            i + 1,
                            k1,
                            r1,
                            rest[i + 1] & _grow2d(far1, -(-r1 // b)),
                            strip_px,
                        )
                        mark[nxt] = True
                        needed |= ~mark[ys, xs]
                        mark[nxt] = False
                    else:
                        needed[:] = True
                    fy, fx = _regionfill(ops, labels, i, ys, xs, hole_idx, needed)
                    band = fy // strip_px  # the filled mask is fractional: normalise it later
                    np.minimum.at(dirty[:, 0], band, fx)
                    np.maximum.at(dirty[:, 1], band, fx + 1)
            kk = ops.kernel(k, r)
            for rect in _layer_rects(occ[i], box, r, h, w, strip_px, 2 * r + 16, ops.max_width):
                ops.composite(*rect, ops.layer(i, kk, r, *rect), None)
                rects.append(rect)
        else:
            k, r = kernels[i]
            kk = ops.kernel(k, r)
            rects = _layer_rects(occ[i], box, r, h, w, strip_px, 2 * r + 16, ops.max_width)
            done = []
            for rect in rects:
                o = ops.layer(i, kk, r, *rect)
                fill = ops.fill(i, kk, r, *rect, o) if front else None
                if front:  # fills read the state before this layer: composite afterwards
                    done.append((rect, o, fill))
                else:
                    ops.composite(*rect, o, None)
            for rect, o, fill in done:
                ops.composite(*rect, o, fill)
        for y0, y1, x0, x1 in rects:
            for band in range(y0 // strip_px, (y1 - 1) // strip_px + 1):
                dirty[band, 0] = min(dirty[band, 0], x0)
                dirty[band, 1] = max(dirty[band, 1], x1)
        if fill == "regionfill":
            far |= occ[i]
    return np.ascontiguousarray(ops.result(), dtype=np.float32)
