"""The exact propagation solve of zhuo_sim: elimination orders and the iterative alternative.

Run:  python benchmarks/bench_propagation.py [--photo 1] [--scale 1.0 0.5]

Builds zhuo_sim's propagation system (sparse defocus at MATLAB-style Canny edges, the matting
Laplacian with the paper's epsilon 1e-7, lambda 0.005) on one photo of ``bench_photos.py``
(640x427, right half blurred) at each ``--scale`` and prints, on one thread:

* SuperLU in symmetric mode with its minimum-degree order on A + A^T (the earlier solve) and in
  the grid's nested-dissection order (``propagation.grid_nested_dissection``, the solve that
  ``matting_propagation(solver="direct")`` uses): seconds, entries of the factor L, and the
  largest difference between the two solutions;
* conjugate gradients with the AMG V-cycle of ``solver="amg"`` in float64 at several relative
  residuals: seconds and the largest / mean difference from the exact solution (px).
"""

from __future__ import annotations

# first: pins the BLAS / OpenMP pools to one thread before numpy is imported
import _common  # noqa: F401

# isort: split

import argparse
import time

import numpy as np


def system(photo: np.ndarray, scale: float):
    """zhuo_sim's propagation system for ``photo`` resized by ``scale``, as
    ``matting_propagation`` builds it in float64: ``(A, b, v, w, guide)``."""
    from defocus.methods.propagation import propagation_system
    from defocus.methods.registry import get_method

    zs = get_method("zhuo_sim")
    sparse = zs.sparse_map(photo)
    known = np.isfinite(sparse)
    values = np.where(known, np.minimum(sparse, zs.params["max_blur"]), 0.0)
    return propagation_system(
        values.astype(np.float32),
        known.astype(np.float32),
        photo.astype(np.float64) / 255.0,
        float(zs.params["lam"]),
        float(zs.params["matting_epsilon"]),
        1,
        scale,
        np.float64,
    )


def main(argv: list[str] | None = None) -> int:
    import scipy.sparse.linalg as spla
    from bench_photos import photos

    from defocus.methods import propagation as prop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=int, default=1, help="index into bench_photos' photos")
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-4, 1e-6, 1e-8])
    args = ap.parse_args(argv)
    photo = photos()[args.photo]
    for scale in args.scale:
        a, b, v, wt, guide = system(photo, scale)
        h, w = wt.shape
        print(f"\n{w}x{h} ({a.shape[0]} unknowns, {a.nnz} entries), one thread")
        print("| solve | s | entries of L | max diff px | mean diff px |")
        print("|---|---:|---:|---:|---:|")
        t = time.perf_counter()
        lu = spla.splu(
            a.tocsc(),
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
        x_mmd = lu.solve(b)
        t_mmd, nnz_mmd = time.perf_counter() - t, lu.L.nnz
        t = time.perf_counter()
        lu, order = prop.factor_direct(a, (h, w), radius=1)
        x = np.empty_like(b)
        x[order] = lu.solve(b[order])
        t_nd, nnz_nd = time.perf_counter() - t, lu.L.nnz
        d = np.abs(x - x_mmd)
        print(f"| direct, minimum degree | {t_mmd:.2f} | {nnz_mmd} | - | - |")
        print(
            f"| direct, nested dissection | {t_nd:.2f} | {nnz_nd} | {d.max():.1e} "
            f"| {d.mean():.1e} |"
        )
        x0 = prop._initial_guess(v, wt)
        for tol in args.tols:
            t = time.perf_counter()
            xi = prop._solve_amg(a, b, x0, guide, tol, 5000)
            d = np.abs(xi - x)
            print(
                f"| AMG-CG float64, residual {tol:g} | {time.perf_counter() - t:.2f} | - "
                f"| {d.max():.1e} | {d.mean():.1e} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
