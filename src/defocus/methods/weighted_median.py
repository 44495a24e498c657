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

How it is computed
------------------
The reference computation (:func:`_reference_rows`) is, per pixel: the window's float32
values (``+inf`` with weight 0 outside the image) and float32 weights
``float32(exp(-d2 / (2 s^2)))`` (``d2`` summed over the guide's channels in float64, in channel
order), ``numpy.argsort`` of the values, float32 cumulative weights in that order, and the
first sorted position whose cumulative weight reaches half of the last one.

The filter gives exactly that result, faster:

* the weights are computed once for all passes (they depend on the guide only), each
  symmetric pair ``w(p, p + o) = w(p + o, p)`` once, and kept only for the rows that a pass
  still needs (the passes run as a wavefront over row blocks: pass ``i`` filters a block as
  soon as pass ``i - 1`` has filtered the rows below it that the window reaches);
* each pixel's window is sorted as 64-bit keys (the value's bits mapped to an unsigned
  integer of the same order in the high word, the weight's bits in the low word), a
  vectorised ``sort`` that needs no gather of values or weights afterwards;
* float32 cumulative weights in that order give the crossing. Equal values may be summed in
  another order than ``argsort``'s, and float32 sums of up to ``n`` non-negative terms in any
  order are within ``gamma = (n - 1) u / (1 - (n - 1) u)`` (``u = 2^-24``) of the exact sum,
  relatively (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., Sec. 4.2).
  Where the cumulative weight just before the crossing is below ``half (1 - delta)`` and the
  one at it is at least ``half (1 + delta)``, with ``delta`` (``_DELTA``) well above
  ``4 gamma``, every summation order finds the same value; the other pixels (about 1 %, and
  every pixel whose value is 0, which has two signed forms) are recomputed by the reference
  computation, so the map is bitwise the reference's.
"""

from __future__ import annotations

import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: position of the low 32-bit word of a native uint64 viewed as two uint32
_LOW = 0 if sys.byteorder == "little" else 1
#: relative band around half the window's weight in which a crossing is re-checked by the
#: reference computation; ``4 gamma`` is 2.9e-5 for 11 x 11 windows (see the module docstring)
_DELTA = 1e-4
_SIGN = np.uint32(0x80000000)


def _normalised_guide(guide: np.ndarray) -> np.ndarray:
    """(H, W, C) float64 guide mapped to [0, 1] by its global min and max (``jointWMF.m``)."""
    g = np.asarray(guide, dtype=np.float64)
    if g.ndim == 2:
        g = g[..., None]
    lo, hi = float(g.min()), float(g.max())
    if hi - lo > 0:
        g = (g - lo) / (hi - lo)
    return g


def _value_keys(values: np.ndarray) -> np.ndarray:
    """float32 values to uint64 keys of the same order, in the high word (low word 0)."""
    bits = values.view(np.uint32)
    hi = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return hi.astype(np.uint64) << np.uint64(32)


def _key_values(keys: np.ndarray) -> np.ndarray:
    """The float32 values of keys made by :func:`_value_keys` (the low word ignored)."""
    hi = (keys >> np.uint64(32)).astype(np.uint32)
    return np.where(hi & _SIGN, hi & ~_SIGN, ~hi).view(np.float32)


def _block_weights(
    gp: list[np.ndarray], h: int, w: int, r: int, inv: float, y0: int, y1: int
) -> np.ndarray:
    """float32 weights ``(K, y1 - y0, W)`` of the rows ``y0:y1``: ``[j, y, x]`` is the weight
    of the neighbour at offset ``j`` (row-major over the window) of pixel ``(y0 + y, x)``,
    0 outside the image. ``gp``: the guide's channels, each padded by ``r`` (any values).

    Each symmetric pair of offsets ``o, -o`` is computed once: ``w(p, p + o)`` over the rows
    and columns that both need, then read at ``p`` for ``o`` and at ``p - o`` for ``-o``.
    The arithmetic is the reference's: ``d2 = (F(q) - F(p))^2`` summed over channels in
    order, in float64, ``exp(inv * d2)`` rounded to float32.
    """
    k = 2 * r + 1
    n = y1 - y0
    out = np.empty((k * k, n, w), np.float32)
    for a in range(r + 1):
        for b in range(-r, r + 1):
            if a == 0 and b < 0:
                continue  # the mirror of (0, -b)
            # pixels p of rows y0 - a : y1 and of the columns both o and -o need
            c0, c1 = min(0, -b), max(w, w - b)
            py, px = slice(y0 - a + r, y1 + r), slice(c0 + r, c1 + r)
            qy, qx = slice(y0 + r, y1 + a + r), slice(c0 + b + r, c1 + b + r)
            if len(gp) < 8:  # numpy sums fewer than 8 channels in order
                d2 = np.square(gp[0][qy, qx] - gp[0][py, px])
                for g in gp[1:]:
                    d2 += np.square(g[qy, qx] - g[py, px])
            else:  # ... and more pairwise: the reference's own expression
                stack = np.stack(gp, axis=2)
                d2 = np.sum((stack[qy, qx] - stack[py, px]) ** 2, axis=2)
            d2 *= inv
            e = np.exp(d2, out=d2)
            # o at p = (y0 + i, x): e[a + i, x - c0], zero where p + o is outside
            j = (a + r) * k + (b + r)
            np.copyto(out[j], e[a : a + n, -c0 : w - c0], casting="unsafe")
            _zero_outside(out[j], y0, h, w, a, b)
            if a or b:  # -o at p' = (y0 + i, x): e[i, x - b - c0], zero where p' - o is out
                jm = (r - a) * k + (r - b)
                np.copyto(out[jm], e[:n, -b - c0 : w - b - c0], casting="unsafe")
                _zero_outside(out[jm], y0, h, w, -a, -b)
    return out


def _zero_outside(plane: np.ndarray, y0: int, h: int, w: int, a: int, b: int) -> None:
    """Zero the pixels ``(y0 + i, x)`` of ``plane`` whose neighbour at ``(a, b)`` is outside
    the image."""
    n = plane.shape[0]
    if b > 0:
        plane[:, max(0, w - b) :] = 0
    elif b < 0:
        plane[:, :-b] = 0
    if a > 0:
        plane[max(0, h - a - y0) :] = 0
    elif a < 0:
        plane[: min(n, max(0, -a - y0))] = 0


def _reference_rows(vals: np.ndarray, wts: np.ndarray) -> np.ndarray:
    """The reference computation for rows of window values and weights (N, K), float32:
    argsort the values, cumulate the weights in that order, take the first crossing of half
    the total."""
    order = np.argsort(vals, axis=1)
    sv = np.take_along_axis(vals, order, axis=1)
    cw = np.cumsum(np.take_along_axis(wts, order, axis=1), axis=1)
    pos = np.sum(cw < 0.5 * cw[:, -1:], axis=1)
    return sv[np.arange(len(sv)), pos]


def _filter_block(
    vpad: np.ndarray, kv: np.ndarray, wb: np.ndarray, r: int, y0: int, y1: int
) -> np.ndarray:
    """Weighted median of the rows ``y0:y1`` (see the module docstring). ``vpad``: the
    float32 values padded by ``r`` with ``+inf``; ``kv``: their keys (:func:`_value_keys`);
    ``wb``: the block's weights (:func:`_block_weights`)."""
    k = 2 * r + 1
    kk, n, w = wb.shape
    keys = np.empty((n, w, k, k), np.uint64)
    np.bitwise_or(
        sliding_window_view(kv[y0 : y1 + 2 * r], (k, k)),
        wb.view(np.uint32).reshape(k, k, n, w).transpose(2, 3, 0, 1),
        out=keys,
    )
    keys = keys.reshape(n * w, kk)
    keys.sort(axis=1)
    cw = np.cumsum(keys.view(np.uint32)[:, _LOW::2].view(np.float32), axis=1)
    half = np.float32(0.5) * cw[:, -1]
    pos = np.count_nonzero(cw < half[:, None], axis=1)
    idx = np.arange(n * w)
    before = np.where(pos > 0, cw[idx, pos - 1], np.float32(0))
    out = _key_values(keys[idx, pos])
    # the crossing is sure when the cumulative weight jumps across the band half (1 +- delta)
    sure = before < half * np.float32(1 - _DELTA)
    sure &= cw[idx, pos] >= half * np.float32(1 + _DELTA)
    sure &= out != 0  # -0.0 and 0.0: argsort's order decides which one is returned
    redo = np.flatnonzero(~sure)
    if redo.size:
        ry, rx = np.divmod(redo, w)
        dy, dx = np.divmod(np.arange(kk), k)
        vals = vpad[(y0 + ry)[:, None] + dy, rx[:, None] + dx]
        out[redo] = _reference_rows(vals, wb[:, ry, rx].T)
    return out.reshape(n, w)


def _filter(
    values: np.ndarray, guide: np.ndarray, r: int, sigma: float, passes: int, block_rows: int
) -> np.ndarray:
    """``passes`` joint weighted medians of float32 ``values`` by the normalised (H, W, C)
    ``guide``, as a wavefront over blocks of ``block_rows`` rows (module docstring)."""
    h, w = values.shape
    out = values.astype(np.float32)
    if passes == 0:
        return out
    inv = -0.5 / sigma**2
    n = max(1, int(block_rows))
    gpad = np.pad(guide, ((r, r), (r, r), (0, 0)), mode="edge")
    gp = [np.ascontiguousarray(gpad[..., c]) for c in range(gpad.shape[2])]
    # the input of each pass, padded with +inf, and its keys; pass i + 1's input is filled
    # block by block as pass i makes it
    vpads = [np.full((h + 2 * r, w + 2 * r), np.inf, np.float32) for _ in range(passes)]
    kvs = [np.empty((h + 2 * r, w + 2 * r), np.uint64) for _ in range(passes)]
    vpads[0][r : r + h, r : r + w] = out
    kvs[0][:] = _value_keys(vpads[0])
    for i in range(1, passes):  # the border stays +inf
        kvs[i][:] = _value_keys(np.array([np.inf], np.float32))[0]
    starts = list(range(0, h, n))
    lag = -(-r // n)  # blocks a pass waits for below a block before filtering it
    weights: dict[int, np.ndarray] = {}
    for step in range(len(starts) + (passes - 1) * lag):
        for i in range(passes):
            c = step - i * lag
            if not 0 <= c < len(starts):
                continue
            y0, y1 = starts[c], min(starts[c] + n, h)
            if i == 0:
                weights[c] = _block_weights(gp, h, w, r, inv, y0, y1)
            res = _filter_block(vpads[i], kvs[i], weights[c], r, y0, y1)
            if i + 1 < passes:
                vpads[i + 1][r + y0 : r + y1, r : r + w] = res
                kvs[i + 1][r + y0 : r + y1, r : r + w] = _value_keys(res)
            else:
                out[y0:y1] = res
                del weights[c]
    return out


def weighted_median_once(
    values: np.ndarray, guide: np.ndarray, radius: int, sigma: float, chunk_rows: int = 8
) -> np.ndarray:
    """One pass of the joint weighted median over ``values`` (H, W) guided by ``guide``
    (H, W, C), already normalised. See :func:`joint_weighted_median`."""
    values = np.asarray(values)
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    return _filter(values, guide, int(radius), float(sigma), 1, chunk_rows)


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
    ``iterWMF = 3``, ``ParameterSetting.m``). Deterministic; float32 output, bitwise the
    reference computation of the module docstring (float32 weights and sums).
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
    return _filter(values, g, int(radius), float(sigma), int(iterations), 8)
