"""Footprint planning of the layered renderer: the rectangles a layer's blur touches.

Layers are located on a coarse occupancy grid of ``_BLOCK`` x ``_BLOCK`` px blocks; a layer's
blur footprint is covered by row strips, each cut to the column runs its input rows need.
Crops near the image border take symmetric (MATLAB) padding from the full frame.
"""

from __future__ import annotations

import numpy as np

#: Size (px) of the blocks of the coarse occupancy grid that the footprints are planned on.
_BLOCK = 8


def _runs(a: np.ndarray):
    """``(starts, stops)`` of the runs of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], a.view(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _grow(a: np.ndarray, n: int) -> np.ndarray:
    """Boolean dilation by ``n`` cells on each side along the last axis."""
    c = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,), dtype=np.int32)
    np.cumsum(a, axis=-1, out=c[..., 1:])
    i = np.arange(a.shape[-1])
    return c[..., np.minimum(i + n + 1, a.shape[-1])] > c[..., np.maximum(i - n, 0)]


def _split(lo: np.ndarray, hi: np.ndarray, size: int):
    """Cut each ``[lo, hi)`` into the fewest near-equal pieces of at most ``size``.

    Returns the index of the interval each piece comes from and the pieces' bounds.
    """
    n = -(-(hi - lo) // size)
    src = np.repeat(np.arange(len(n)), n)
    j = np.arange(len(src)) - np.repeat(np.cumsum(n) - n, n)
    lo, span, n = lo[src], (hi - lo)[src], n[src]
    return src, lo + (span * j) // n, lo + (span * (j + 1)) // n


def _layer_rects(occ, box, r, h, w, strip_px, merge_px, max_width=None):
    """Output rectangles ``(y0, y1, x0, x1)`` covering one layer's blur footprint.

    ``occ`` is the layer's ``(rows / _BLOCK, cols / _BLOCK)`` occupancy grid and ``box`` its
    bounding box; every output pixel within ``r`` of a layer pixel is covered exactly once.
    Row runs are cut into strips of at most ``strip_px`` rows; each strip keeps only the
    column runs its input rows need (runs closer than ``merge_px`` are merged), cut into
    pieces of at most ``max_width`` columns if given.
    """
    b = _BLOCK
    g = -(-r // b)
    ylo, yhi = max(0, box[0].start - r), min(h, box[0].stop + r)
    xlo, xhi = max(0, box[1].start - r), min(w, box[1].stop + r)
    rs, re = _runs(_grow(occ.any(1), g))
    _, y0, y1 = _split(np.maximum(ylo, rs * b), np.minimum(yhi, re * b), strip_px)
    # occupied column blocks of each strip's input rows, grown by the radius
    rows = np.zeros((occ.shape[0] + 1, occ.shape[1]), dtype=np.int32)
    np.cumsum(occ, axis=0, out=rows[1:])
    lo, hi = np.maximum(0, y0 - r) // b, (np.minimum(h, y1 + r) - 1) // b + 1
    cols = _grow(rows[hi] > rows[lo], g)
    edge = np.zeros((len(y0), cols.shape[1] + 1), dtype=np.int8)
    edge[:, :-1] = cols
    edge[:, 1:] -= cols
    strip, cs = np.nonzero(edge == 1)
    ce = np.nonzero(edge == -1)[1]
    xa, xb = np.maximum(xlo, cs * b), np.minimum(xhi, ce * b)
    new = np.ones(len(strip), dtype=bool)
    new[1:] = (strip[1:] != strip[:-1]) | (xa[1:] - xb[:-1] > merge_px)
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(new)) - 1
    strip, xa, xb = strip[first], xa[first], xb[last]
    if max_width is not None:
        src, xa, xb = _split(xa, xb, max_width)
        strip = strip[src]
    return list(zip(y0[strip].tolist(), y1[strip].tolist(), xa.tolist(), xb.tolist(), strict=True))


def _sym_index(lo: int, hi: int, r: int, n: int) -> np.ndarray:
    """Indices of ``[lo - r, hi + r)`` into an axis of length ``n`` with symmetric border."""
    return np.pad(np.arange(n), r, mode="symmetric")[lo : hi + 2 * r]


def _window(a, y0, y1, x0, x1, r, h, w):
    """``a[y0 - r : y1 + r, x0 - r : x1 + r]`` with symmetric (MATLAB) borders."""
    if y0 - r >= 0 and y1 + r <= h and x0 - r >= 0 and x1 + r <= w:
        return a[y0 - r : y1 + r, x0 - r : x1 + r]
    py0, py1, px0, px1 = max(0, r - y0), max(0, y1 + r - h), max(0, r - x0), max(0, x1 + r - w)
    part = a[max(0, y0 - r) : min(h, y1 + r), max(0, x0 - r) : min(w, x1 + r)]
    pads = ((py0, py1), (px0, px1)) + ((0, 0),) * (a.ndim - 2)
    return np.pad(part, pads, mode="symmetric")


def _grow2d(a: np.ndarray, n: int) -> np.ndarray:
    """Boolean dilation of a 2-D array by ``n`` cells (a (2n + 1) square)."""
    return _grow(_grow(a, n).T, n).T


def _bounding_boxes(labels: np.ndarray, n: int) -> list:
    """``scipy.ndimage.find_objects(labels + 1, max_label=n)``: for each label ``0 .. n - 1``
    the ``(rows, cols)`` slices of its bounding box, or None if it is absent."""
    h, w = labels.shape
    rows = np.zeros((n, h), dtype=bool)
    rows[labels, np.arange(h)[:, None]] = True
    cols = np.zeros((n, w), dtype=bool)
    cols[labels, np.arange(w)[None, :]] = True
    boxes = []
    for i in range(n):
        r = np.flatnonzero(rows[i])
        if not r.size:
            boxes.append(None)
            continue
        c = np.flatnonzero(cols[i])
        boxes.append((slice(int(r[0]), int(r[-1]) + 1), slice(int(c[0]), int(c[-1]) + 1)))
    return boxes
