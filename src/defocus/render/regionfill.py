"""The generator's background fill under front layers: MATLAB ``regionfill``.

:func:`harmonic_fill` is the Laplace (membrane) interpolation documented by MATLAB
("calculates the discrete Laplacian over the regions and solves the Dirichlet boundary value
problem", Image Processing Toolbox, ``regionfill`` reference page, Algorithms), solved by a
direct sparse factorisation; :func:`_hole` finds the hole of a front layer and
:func:`_regionfill` fills it on a renderer's state (see :mod:`defocus.render.layered`).
SciPy is imported only when a system is solved.
"""

from __future__ import annotations

import numpy as np

from defocus.render.footprint import _layer_rects, _window
from defocus.render.layers import FILL_EPS


def harmonic_fill(known: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Laplace (membrane) interpolation inside ``hole``: MATLAB ``regionfill`` per channel.

    Parameters
    ----------
    known : numpy.ndarray
        ``(H, W, C)`` values; those outside ``hole`` are the Dirichlet data.
    hole : numpy.ndarray
        ``(H, W)`` bool, the pixels to fill.

    Returns
    -------
    numpy.ndarray
        ``(n, C)`` float64 values at ``np.nonzero(hole)`` (row-major order): the solution of
        ``deg(p) x_p - sum_{q in hole} x_q = sum_{q not in hole} known_q`` over the
        4-neighbours ``q`` of ``p`` inside the array, ``deg(p)`` their number. Neighbours
        beyond the array border do not exist (zero flux there), so a crop gives the
        full-image answer only if it contains every in-image neighbour of the hole.
    """
    hole = np.asarray(hole, dtype=bool)
    known = np.asarray(known, dtype=np.float64)
    if known.ndim != 3 or known.shape[:2] != hole.shape:
        raise ValueError(f"known {known.shape} must be (H, W, C) with hole {hole.shape} = (H, W)")
    hh, ww = hole.shape
    ys, xs = np.nonzero(hole)
    n = len(ys)
    if n == 0:
        return np.zeros((0, known.shape[2]))
    if n == hole.size:
        raise ValueError("the hole covers the whole image: no known pixel to interpolate from")
    return _membrane_solve(ys, xs, _index_grid(hh, ww), lambda y, x: known[y, x])


def _index_grid(h: int, w: int) -> np.ndarray:
    """``(h + 2, w + 2)`` int64 scratch grid: -1 on the image, -2 on the border around it."""
    idx = np.full((h + 2, w + 2), -2, dtype=np.int64)
    idx[1:-1, 1:-1] = -1
    return idx


def _membrane_solve(ys, xs, idx, known_at, needed=None):
    """Solve the discrete Laplace equation on the hole pixels ``(ys, xs)``.

    ``idx`` is :func:`_index_grid` of the image (restored on return; the hole is numbered
    in it meanwhile), ``known_at(y, x)`` the ``(m, C)`` values at known pixels. The
    equation is that of :func:`harmonic_fill` (MATLAB ``regionfill``); its matrix is
    symmetric positive definite (each component of the hole has a known neighbour) and is
    solved by :func:`_spd_solve`.

    Without ``needed`` returns the ``(n, C)`` solution. With a boolean ``needed`` (n,),
    only the 4-connected components of the hole that hold a needed pixel are solved (the
    components are independent systems, so their values are the same) and the result is
    ``(sel, values)``: the indices solved and their ``(len(sel), C)`` values.
    """
    n = len(ys)
    py, px = ys + 1, xs + 1
    idx[py, px] = np.arange(n)
    # neighbour numbers N, S, W, E: >= 0 hole, -1 known pixel, -2 beyond the image border
    nb = np.stack([idx[py - 1, px], idx[py + 1, px], idx[py, px - 1], idx[py, px + 1]], axis=1)
    idx[py, px] = -1
    sel = None
    if needed is not None:
        sel = np.arange(n)
        if not needed.all():
            n_comp, comp = _components(ys, xs)
            wanted = np.zeros(n_comp, dtype=bool)
            wanted[comp[needed]] = True
            sel = np.flatnonzero(wanted[comp])
            # renumber the kept pixels (components are closed: a kept pixel's hole
            # neighbours are kept)
            new = np.full(n + 2, -1, dtype=np.int64)  # new[-2] = -2, new[-1] = -1 below
            new[sel] = np.arange(sel.size)
            new[-2] = -2
            nb, ys, xs, n = new[nb[sel]], ys[sel], xs[sel], sel.size
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return sel, np.asarray(known_at(empty, empty), dtype=np.float64)
    deg = (nb != -2).sum(axis=1).astype(np.float64)
    ki, kd = np.nonzero(nb == -1)  # known neighbours: (hole pixel, direction)
    v = np.asarray(known_at(ys[ki] + _DY[kd], xs[ki] + _DX[kd]), dtype=np.float64)
    rhs = np.stack([np.bincount(ki, v[:, c], minlength=n) for c in range(v.shape[1])], axis=1)
    inner = nb >= 0
    counts = inner.sum(axis=1)
    rows, cols = np.repeat(np.arange(n), counts), nb[inner]  # the hole's 4-neighbour pairs
    x = _spd_solve(_graph(cols, counts, n), rows, cols, deg, rhs)
    return x if sel is None else (sel, x)


def _components(ys, xs):
    """4-connected components of the pixels ``(ys, xs)``: their number and each pixel's."""
    import cv2

    y0, x0 = int(ys.min()), int(xs.min())
    mask = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), dtype=np.uint8)
    mask[ys - y0, xs - x0] = 1
    n_comp, lab = cv2.connectedComponents(mask, connectivity=4, ltype=cv2.CV_32S)
    return n_comp, lab[ys - y0, xs - x0]  # label 0 is the background: never a pixel's


#: Row and column steps of the neighbours N, S, W, E (:func:`_membrane_solve`).
_DY = np.array([-1, 1, 0, 0])
_DX = np.array([0, 0, -1, 1])


def _graph(cols, counts, n):
    """CSR adjacency from the neighbours ``cols`` of each row, row by row (``counts``)."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    from scipy import sparse

    return sparse.csr_matrix((np.ones(len(cols), np.int8), cols, indptr), shape=(n, n))


#: Largest bandwidth (after reverse Cuthill-McKee) solved as a banded Cholesky system;
#: wider systems go to SuperLU. Both are direct solvers; the banded one costs n * bw^2 and
#: is several times faster on the thin holes of small blurs.
_BAND_MAX = 48
#: ... and whose band storage has at most this many cells (64 MB of float64).
_BAND_CELLS = 8_000_000


def _spd_solve(graph, rows, cols, deg, rhs):
    """Solve ``(diag(deg) - adjacency) x = rhs`` (symmetric positive definite).

    The unknowns are renumbered by reverse Cuthill-McKee; a narrow band is factorised by
    LAPACK's banded Cholesky (``scipy.linalg.solveh_banded``), a wide one by SuperLU with
    a symmetric minimum-degree ordering.
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    n = len(deg)
    perm = reverse_cuthill_mckee(graph, symmetric_mode=True)
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n)
    ri, ci = inv[rows], inv[cols]
    bw = int(np.abs(ri - ci).max()) if len(ri) else 0
    if bw <= _BAND_MAX and (bw + 1) * n <= _BAND_CELLS:
        from scipy.linalg import solveh_banded

        ab = np.zeros((bw + 1, n))  # upper form: ab[bw + i - j, j] = a[i, j], i <= j
        ab[bw] = deg[perm]
        up = ri < ci
        ab[bw + ri[up] - ci[up], ci[up]] = -1.0
        xp = solveh_banded(ab, rhs[perm], check_finite=False)
        x = np.empty_like(xp)
        x[perm] = xp
        return x
    from scipy import sparse
    from scipy.sparse.linalg import splu

    vals = np.concatenate([deg, -np.ones(len(rows))])
    ar = np.arange(n)
    a = sparse.csc_matrix(
        (vals, (np.concatenate([ar, rows]), np.concatenate([ar, cols]))), shape=(n, n)
    )
    return splu(a, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}).solve(rhs)


def _hole(labels, i, k, r, cand, strip_px):
    """Pixels ``(ys, xs)`` of the generator's fill hole for front layer ``i``.

    The hole is where the far union (layers < ``i``) blurred with the layer's window
    ``k`` (radius ``r``, symmetric border) is >= :data:`FILL_EPS`, outside the union
    (``blur_by_depth.m`` l. 290-299). It is searched on rectangles covering ``cand``, the
    block grid of the pixels that can be in it: blocks holding a pixel of a layer >= ``i``
    within ``r`` px (``ceil(r / 8)`` blocks) of a farther layer.
    """
    import cv2

    h, w = labels.shape
    empty = np.zeros(0, dtype=np.int64)
    if not cand.any():
        return empty, empty
    kk = np.asarray(k, dtype=np.float64)
    full = (slice(0, h), slice(0, w))
    parts_y, parts_x = [empty], [empty]
    for y0, y1, x0, x1 in _layer_rects(cand, full, 0, h, w, 4 * strip_px, 2 * r + 16):
        u = (_window(labels, y0, y1, x0, x1, r, h, w) < i).astype(np.float64)
        bu = cv2.sepFilter2D(u, cv2.CV_64F, kk, kk, borderType=cv2.BORDER_CONSTANT)
        hole = (bu[r:-r, r:-r] >= FILL_EPS) & (labels[y0:y1, x0:x1] >= i)
        ys, xs = np.nonzero(hole)
        parts_y.append(ys + y0)
        parts_x.append(xs + x0)
    return np.concatenate(parts_y), np.concatenate(parts_x)


def _regionfill(ops, labels, i, ys, xs, idx, needed):
    """Fill the hole ``(ys, xs)`` of front layer ``i`` on the state of ``ops``.

    :func:`_membrane_solve` fills it from its known neighbours: the normalised state on
    the far union, 0 elsewhere (the far union's indicator for the mask channel), as the
    generator zeroes the colour off the union and fills ``double(mask_sum_prev)``
    (``blur_by_depth.m`` l. 302-313). The state must be normalised on the far union. Only
    the hole's components holding a ``needed`` pixel are solved and written; the others
    are filled again at the next front layer before anything reads them. Returns the
    pixels written.
    """

    def known_at(y, x):
        v = ops.gather(y, x).astype(np.float64)  # (m, 4): [mask, colour]
        far = labels[y, x] < i
        v[:, 0] = far  # the far union's indicator: mask of the generator's fill
        v[:, 1:] *= far[:, None]  # normalised colour, zero off the union
        return v

    sel, vals = _membrane_solve(ys, xs, idx, known_at, needed)
    ys, xs = ys[sel], xs[sel]
    if ys.size:
        ops.scatter(ys, xs, vals.astype(np.float32))
    return ys, xs
