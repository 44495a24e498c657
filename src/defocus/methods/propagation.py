"""Matting-Laplacian propagation of sparse values (Levin et al. 2008): the one solve that
fills a dense map from sparse estimates in dhde (Park et al. 2017, Eqs. 7-8), zhuo_sim (Zhuo &
Sim 2011, Eq. 9) and the ``matting=resize`` mode of lbp."""

from __future__ import annotations

import functools

import numpy as np

#: solvers of the propagation system (``lap_solver``)
LAP_SOLVERS = ("direct", "cg", "amg")
#: default relative residual ``||b - A x|| / ||b||`` of the iterative solvers. On the
#: 640x427 benchmark image (``benchmarks/bench_features.py``) "amg" stops after about 12
#: iterations, 0.0007 px mean / 0.005 px max from the direct solve (sigma range 0.9-1.7 px)
LAP_TOL = 1e-2


def _initial_guess(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Known values where constrained, their weighted mean elsewhere (a better start than a
    blurred fill on the benchmark image)."""
    mean = float(np.sum(values * weights) / np.sum(weights))
    return np.where(weights > 0, values, mean).ravel()


@functools.cache
def _stencil_csr_kernel():
    """The numba kernel of :func:`_stencil_system` (compiled on first use; numba is imported
    only here, as pymatting imports it only for its Laplacian)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(rows, h, w, radius, diag, data):
        n = h * w
        span = 4 * radius + 1
        r2 = 2 * radius
        indptr = np.empty(n + 1, np.int32)
        indices = np.empty(n * span * span, np.int32)
        indptr[0] = 0
        k = 0
        for y in range(h):
            y0 = max(0, y - r2) - y + r2
            y1 = min(h - 1, y + r2) - y + r2
            for x in range(w):
                i = y * w + x
                x0 = max(0, x - r2) - x + r2
                x1 = min(w - 1, x + r2) - x + r2
                for sy in range(y0, y1 + 1):
                    col = i + (sy - r2) * w - r2
                    for sx in range(x0, x1 + 1):
                        v = rows[i * span * span + sy * span + sx]
                        if sy == r2 and sx == r2:
                            v += diag[i]
                        if v != 0.0:
                            indices[k] = col + sx
                            data[k] = v
                            k += 1
                indptr[i + 1] = k
        return indptr, indices[:k], k

    return kernel


def _stencil_system(lap, shape: tuple[int, int], radius: int, diag: np.ndarray, dtype):
    """``lap + diags(diag)`` as a canonical CSR matrix of ``dtype`` (int32 indices), from
    pymatting's matting Laplacian, whose rows hold ``(4r+1)^2`` stencil slots each (slots
    outside the image are explicit zeros at column 0).

    One pass: keeps the in-image slots in column order, adds ``diag`` to the centre slot in
    float64 and drops exact zeros, so the values equal those of scipy's
    ``(lap + sp.diags(diag)).tocsr()`` bit for bit (scipy sums the padding zeros in and drops
    exact zeros too) without its general sparse sum, index sort and duplicate summing."""
    import scipy.sparse as sp

    h, w = shape
    n = h * w
    span = 4 * radius + 1
    if lap.shape != (n, n) or lap.data.shape != (n * span * span,):
        raise ValueError("expected pymatting's stencil layout of the matting Laplacian")
    data = np.empty(n * span * span, dtype)
    indptr, indices, k = _stencil_csr_kernel()(
        np.ascontiguousarray(lap.data, np.float64),
        h,
        w,
        radius,
        np.ascontiguousarray(diag, np.float64),
        data,
    )
    a = sp.csr_matrix((data[:k], indices, indptr), shape=(n, n))
    a.has_sorted_indices = True
    return a


def grid_nested_dissection(h: int, w: int, reach: int, leaf: int = 16) -> np.ndarray:
    """A nested-dissection elimination order of the pixels of an ``h`` x ``w`` grid whose
    matrix couples pixels up to ``reach`` rows or columns apart (the matting Laplacian of
    window radius r: reach 2r).

    George's scheme on the grid's geometry: the longer side of a block is cut by a separator of
    ``reach`` lines, the two halves are ordered first (recursively), the separator last; a block
    of at most ``leaf`` pixels (or one too thin to cut) is ordered row by row. Nothing of the
    matrix is read. A factorisation in this order fills O(n log n) entries on a 2-D grid
    (George 1973, "Nested dissection of a regular finite element mesh", SIAM J. Numer. Anal.
    10(2)). Returns the pixel indices (row-major) in elimination order, int64 (h*w,).
    """
    if h < 1 or w < 1 or reach < 1 or leaf < 1:
        raise ValueError(f"need h, w, reach, leaf >= 1, got {h}, {w}, {reach}, {leaf}")
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    out: list[np.ndarray] = []
    stack: list[tuple[int, int, int, int, bool]] = [(0, h, 0, w, False)]
    # iterative post-order: a block is pushed back as "separator only" after its halves
    while stack:
        y0, y1, x0, x1, sep_only = stack.pop()
        hh, ww = y1 - y0, x1 - x0
        along_x = ww >= hh
        side = ww if along_x else hh
        if not sep_only and (hh * ww <= leaf or side < 2 * reach + 1):
            out.append(idx[y0:y1, x0:x1].ravel())
            continue
        m = (x0 if along_x else y0) + (side - reach) // 2
        if sep_only:
            out.append(
                (idx[y0:y1, m : m + reach] if along_x else idx[m : m + reach, x0:x1]).ravel()
            )
            continue
        halves = (
            [(y0, y1, x0, m), (y0, y1, m + reach, x1)]
            if along_x
            else [(y0, m, x0, x1), (m + reach, y1, x0, x1)]
        )
        stack.append((y0, y1, x0, x1, True))
        stack.extend((*b, False) for b in reversed(halves))
    order = np.concatenate(out)
    if len(order) != h * w:  # pragma: no cover - a bug in the recursion, not an input error
        raise AssertionError("nested dissection lost or repeated pixels")
    return order


def factor_direct(a, shape: tuple[int, int], radius: int):
    """SuperLU's symmetric-mode factorisation of ``A`` with the unknowns in the grid's
    nested-dissection order; returns ``(lu, order)``: ``lu`` factors ``A[order][:, order]``."""
    import scipy.sparse.linalg as spla

    order = grid_nested_dissection(shape[0], shape[1], reach=2 * radius)
    lu = spla.splu(
        a.tocsr()[order][:, order].tocsc(),
        permc_spec="NATURAL",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    return lu, order


def _solve_direct(a, b: np.ndarray, shape: tuple[int, int], radius: int) -> np.ndarray:
    """``A x = b`` for the SPD propagation system by sparse LU in SuperLU's symmetric mode
    (diagonal pivots: a Cholesky-like factorisation whose fill depends on the pattern alone),
    the unknowns eliminated in the grid's nested-dissection order.

    The order is the lever: SuperLU's own minimum-degree ordering on A + A^T filled 57 M
    entries at 640x427 (12-14 s, one core), nested dissection 42 M (6-7 s); 320x214: 1.8 s ->
    0.9-1.3 s; solutions equal to 2e-11 px (the scikit-image photos of
    ``benchmarks/bench_photos.py``, zhuo_sim's system). (With partial pivoting and ordering on
    A + A^T the factorisation was pathological, 158 s instead of 2.4 s on hubble_deep_field.)
    """
    lu, order = factor_direct(a, shape, radius)
    x = np.empty(len(b), dtype=np.float64)
    x[order] = lu.solve(np.asarray(b, np.float64)[order])
    return x


def _vcycle(ml, lvl: int, x: np.ndarray, b: np.ndarray) -> None:
    """One V-cycle on level ``lvl`` of the pyamg hierarchy ``ml``, in place on ``x``: the
    operations of pyamg's ``MultilevelSolver`` V-cycle, in the same order."""
    lev = ml.levels[lvl]
    lev.presmoother(lev.A, x, b)
    coarse_b = lev.R @ (b - lev.A @ x)
    coarse_x = np.zeros_like(coarse_b)
    if lvl == len(ml.levels) - 2:
        coarse_x[:] = ml.coarse_solver(ml.levels[-1].A, coarse_b)
    else:
        _vcycle(ml, lvl + 1, coarse_x, coarse_b)
    x += lev.P @ coarse_x
    lev.postsmoother(lev.A, x, b)


def _precondition(ml, r: np.ndarray) -> np.ndarray:
    """The V-cycle preconditioner applied to ``r`` (zero start)."""
    if len(ml.levels) == 1:
        return np.asarray(ml.coarse_solver(ml.levels[0].A, r), r.dtype)
    z = np.zeros_like(r)
    _vcycle(ml, 0, z, r)
    return z


def _pcg(ml, b: np.ndarray, x0: np.ndarray, tol: float, maxiter: int) -> np.ndarray:
    """Preconditioned conjugate gradients with the V-cycle of ``ml``: the iterates of
    ``ml.solve(b, x0, tol, accel="cg")`` (pyamg's CG: true residual every 8th step, stop at
    ``||r|| < tol ||b||``), bit for bit, without its extra work: pyamg's preconditioner
    computes two residual norms per V-cycle (two products with the finest matrix) and its CG
    applies the V-cycle once more after the last step."""
    a = ml.levels[0].A
    dt = np.result_type(a.dtype, b.dtype)
    b = np.asarray(b, dt).ravel()
    x = np.array(x0, dtype=dt).ravel()
    r = b - a @ x
    normr = np.linalg.norm(r)
    normb = np.sqrt(np.inner(b, b))
    rtol = tol * (normb if normb != 0.0 else 1.0)
    if normr < rtol:
        return x
    z = _precondition(ml, r)
    p = z.copy()
    rz = np.inner(r, z)
    for it in range(maxiter):
        ap = a @ p
        pap = np.inner(ap, p)
        if pap < 0.0:  # not SPD: pyamg's CG stops here too
            return x
        alpha = rz / pap
        x += alpha * p
        if it % 8 and it > 0:
            r -= alpha * ap
        else:
            r = b - a @ x
        if np.linalg.norm(r) < rtol or it + 1 == maxiter:
            return x
        z = _precondition(ml, r)
        rz_old, rz = rz, np.inner(r, z)
        if rz < 0.0:
            return x
        p *= rz / rz_old
        p += z
    return x


def _solve_amg(
    a, b: np.ndarray, x0: np.ndarray, img: np.ndarray, tol: float, maxiter: int
) -> np.ndarray:
    """PCG with a plain-aggregation AMG V-cycle (pyamg) whose candidate vectors are the matting
    Laplacian's near null space: the constant and the three colour channels (Levin et al.: the
    affine functions of the colour have zero energy). With the constant alone AMG needs ~100
    iterations here; with the colour candidates ~12."""
    try:
        import pyamg
    except ImportError as err:
        raise ImportError(
            "lap_solver='amg' needs pyamg (pip install pyamg); use lap_solver='cg' or 'direct'"
        ) from err

    cand = np.column_stack([np.ones(img.shape[0] * img.shape[1]), img.reshape(-1, img.shape[-1])])
    ml = pyamg.smoothed_aggregation_solver(
        a,
        B=cand,
        symmetry="symmetric",
        # aggregates on the finest level from the pattern of A itself: pyamg's default
        # symmetric strength (theta 0) keeps every stored entry and standard aggregation
        # reads the pattern alone, so the hierarchy is the same, without the strength
        # matrix's scaled copies of A (~0.05 s of ~0.2 s setup at 640x427)
        strength=[None, "symmetric"],
        smooth=None,  # unsmoothed aggregation: 4x cheaper setup, same iteration count here
        presmoother=("block_gauss_seidel", {"sweep": "symmetric"}),
        postsmoother=("block_gauss_seidel", {"sweep": "symmetric"}),
        max_coarse=2000,
        coarse_solver="splu",
        # the candidates are the near null space already: pyamg's default smoothing of them
        # (4 symmetric Gauss-Seidel sweeps per candidate) cost half the setup for ~1 iteration
        improve_candidates=None,
    )
    return _pcg(ml, b, x0, tol, maxiter)


def _solve_cg(a, b: np.ndarray, x0: np.ndarray, shape, tol: float, maxiter: int) -> np.ndarray:
    """PCG with pymatting's geometric multigrid V-cycle (no extra dependency; ~10x the
    iterations of "amg" on this system)."""
    from pymatting.preconditioner import vcycle
    from pymatting.solver import cg

    return cg(a, b, x0=x0, rtol=tol, maxiter=maxiter, M=vcycle(a, shape))


def propagation_system(
    values: np.ndarray,
    weights: np.ndarray,
    guide: np.ndarray,
    lam: float,
    epsilon: float,
    radius: int,
    scale: float,
    dtype,
):
    """The system that :func:`matting_propagation` solves: ``(A, b, v, w, guide)`` with ``A``
    = ``L + lam W`` as a CSR matrix of ``dtype``, ``b = lam W v`` (float64), the known values
    ``v`` and weights ``w`` on the (resized) grid and the (resized, clipped) guide; None when
    no pixel is known. Arguments as :func:`matting_propagation`."""
    import cv2
    from pymatting import cf_laplacian

    weights = np.asarray(weights)
    if values.shape != weights.shape or guide.shape[:2] != weights.shape:
        raise ValueError(
            f"values {values.shape}, weights {weights.shape} and guide {guide.shape[:2]} must agree"
        )
    if not 0 < scale <= 1:
        raise ValueError(f"propagation scale must be in (0, 1], got {scale!r}")
    h, w = weights.shape
    dt = np.float32 if weights.dtype == np.float32 else np.float64
    img = np.clip(np.asarray(guide, np.float64), 0, 1)
    wt = weights.astype(dt)
    v = values.astype(dt) * wt
    if scale < 1:
        size = (max(4, round(w * scale)), max(4, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        wt = cv2.resize(wt, size, interpolation=cv2.INTER_AREA)
        v = cv2.resize(v, size, interpolation=cv2.INTER_AREA)
    if not np.any(wt > 0):
        return None
    v = np.where(wt > 1e-9, v / np.maximum(wt, 1e-9), 0.0)
    lap = cf_laplacian(img, epsilon, radius)
    d = wt.ravel().astype(np.float64)
    b = lam * d * v.ravel().astype(np.float64)
    # L + lam W without pymatting's padding entries (as explicit entries they make AMG
    # aggregate worse, 20 -> 55 iterations)
    a = _stencil_system(lap, wt.shape, radius, lam * d, dtype)
    return a, b, v, wt, img


def matting_propagation(
    values: np.ndarray,
    weights: np.ndarray,
    guide: np.ndarray,
    lam: float = 0.005,
    epsilon: float = 1e-5,
    radius: int = 1,
    scale: float = 1.0,
    solver: str = "amg",
    tol: float = LAP_TOL,
    maxiter: int = 2000,
) -> np.ndarray:
    """Full map from sparse ``values`` known where ``weights`` > 0.

    Solves ``(L + lam W) x = lam W v`` with ``L`` the matting Laplacian of the ``guide``
    (float RGB in [0, 1]; :func:`pymatting.cf_laplacian`, which adds ``epsilon`` to the window
    covariance as Levin et al.'s code and DHDE's GetLaplacian.m do) and ``W = diag(weights)``:
    the minimiser of ``x^T L x + lam (x - v)^T W (x - v)`` (Levin et al. 2008 Eq. 12; Zhuo & Sim
    2011 Eq. 9; Park et al. 2017 Eqs. 7-8). The system is sparse SPD. ``weights`` is a boolean
    mask or confidences; with no known pixel the result is all zeros.

    ``solver``: "direct" is SuperLU in symmetric mode in a nested-dissection order (exact;
    :func:`_solve_direct`: ~1 s at 320x214, ~6.5 s at 640x427, one core); "amg" (default) is
    conjugate gradients preconditioned by algebraic multigrid with the colour channels as
    near-null-space candidates (:func:`_solve_amg`, needs ``pyamg``; ~1.2 s CPU at 640x427 with
    5 % known pixels, of which ~0.9 s are the ~14 V-cycles, ~0.15 s the AMG setup and ~0.13 s
    the Laplacian; float32 unless ``tol < 1e-4``); "cg" is conjugate gradients with pymatting's
    geometric V-cycle. The iterative solvers start from the known values (their mean
    elsewhere) and stop at the relative residual ``tol``; see :data:`LAP_TOL` for the measured
    difference to "direct". (Incomplete Cholesky is not offered: it fails for lack of positive
    definiteness without a shift.)

    ``scale < 1`` (a speed knob, not in the papers) solves on the image resized by ``scale``:
    constraints are area-averaged (in float32 when ``weights`` is float32, else float64), so
    ``W`` holds the fraction of known pixels; the result is upsampled bilinearly.
    """
    if solver not in LAP_SOLVERS:
        raise ValueError(f"lap_solver must be one of {LAP_SOLVERS}, got {solver!r}")
    # float32 for the default "amg" residual (0.0007 vs 0.0005 px mean from the direct solve
    # on the benchmark image, ~10 % faster), float64 for tight ones
    f = np.float32 if solver == "amg" and tol >= 1e-4 else np.float64
    system = propagation_system(values, weights, guide, lam, epsilon, radius, scale, f)
    h, w = np.shape(weights)
    if system is None:
        return np.zeros((h, w), np.float32)
    a, b, v, wt, img = system
    if solver == "direct":
        x = _solve_direct(a, b, wt.shape, radius)
    else:
        x0 = _initial_guess(v, wt)
        if solver == "amg":
            x = _solve_amg(a, b.astype(f), x0.astype(f), img.astype(f), float(tol), int(maxiter))
        else:
            x = _solve_cg(a, b, x0, wt.shape, float(tol), int(maxiter))
    x = np.asarray(x, dtype=np.float32).reshape(wt.shape)
    if scale < 1:
        import cv2

        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    return x
