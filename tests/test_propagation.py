"""Matting-Laplacian propagation: the AMG-preconditioned CG loop against pyamg's own."""

from __future__ import annotations

import numpy as np
import pytest

from defocus.methods import propagation as prop


def _system(tol_dtype=np.float32):
    """A 71x107 crop of a real photo, 5 % known pixels: the AMG hierarchy and right-hand side
    as ``matting_propagation`` builds them."""
    import pyamg
    import scipy.sparse as sp
    from pymatting import cf_laplacian
    from skimage import data

    img = data.astronaut()[100:313:3, 50:371:3].astype(np.float64) / 255.0
    rng = np.random.default_rng(1)
    known = rng.random(img.shape[:2]) < 0.05
    values = np.where(known, rng.uniform(0.5, 2.0, known.shape), 0.0)
    d = known.ravel().astype(np.float64)
    a = (cf_laplacian(img, 1e-5, 1) + 0.005 * sp.diags(d)).tocsr().astype(tol_dtype)
    b = (0.005 * d * values.ravel()).astype(tol_dtype)
    x0 = prop._initial_guess(values, known.astype(np.float64)).astype(tol_dtype)
    cand = np.column_stack([np.ones(known.size), img.reshape(-1, 3)])
    ml = pyamg.smoothed_aggregation_solver(
        a,
        B=cand,
        symmetry="symmetric",
        smooth=None,
        presmoother=("block_gauss_seidel", {"sweep": "symmetric"}),
        postsmoother=("block_gauss_seidel", {"sweep": "symmetric"}),
        max_coarse=200,
        coarse_solver="splu",
        improve_candidates=None,
    )
    return ml, b, x0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tol", [1e-2, 1e-6])
def test_pcg_is_pyamg_cg_bit_for_bit(dtype, tol):
    ml, b, x0 = _system(dtype)
    assert len(ml.levels) >= 3  # the recursion below the first coarse level is exercised
    ref = ml.solve(b, x0=x0, tol=tol, accel="cg", maxiter=500)
    out = prop._pcg(ml, b, x0, tol, 500)
    assert out.dtype == ref.dtype
    np.testing.assert_array_equal(out, ref)
    # the same stopping rule: relative residual below tol (the recursive residual; float32
    # cannot resolve a true residual of 1e-6)
    a = ml.levels[0].A
    if dtype == np.float64 or tol >= 1e-4:
        assert np.linalg.norm(b - a @ out) < tol * np.linalg.norm(b)


def test_pcg_maxiter_and_solved_start():
    ml, b, x0 = _system()
    ref = ml.solve(b, x0=x0, tol=1e-12, accel="cg", maxiter=3)
    np.testing.assert_array_equal(prop._pcg(ml, b, x0, 1e-12, 3), ref)
    # a start that meets the tolerance is returned as it is
    y = prop._pcg(ml, b, x0, 1e-2, 500)
    np.testing.assert_array_equal(prop._pcg(ml, b, y, 0.5, 500), y)
    np.testing.assert_array_equal(ml.solve(b, x0=y, tol=0.5, accel="cg", maxiter=500), y)


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stencil_system_equals_scipy_sum(radius, dtype):
    # the one-pass assembly of L + lam W equals scipy's sparse sum of pymatting's Laplacian
    # and the diagonal (the reference construction), values bit for bit, in canonical form
    import scipy.sparse as sp
    from pymatting import cf_laplacian
    from skimage import data

    img = data.chelsea()[40:200:4, 60:300:5].astype(np.float64) / 255.0  # 40x48, real photo
    h, w = img.shape[:2]
    rng = np.random.default_rng(2)
    d = 0.005 * (rng.random(h * w) < 0.1)
    lap = cf_laplacian(img, 1e-5, radius)
    ref = (lap + sp.diags(d)).tocsr().astype(dtype)
    ref.sort_indices()
    out = prop._stencil_system(lap, (h, w), radius, d, dtype)
    assert out.dtype == dtype and out.has_canonical_format
    np.testing.assert_array_equal(out.indptr, ref.indptr)
    np.testing.assert_array_equal(out.indices, ref.indices)
    np.testing.assert_array_equal(out.data, ref.data)
    with pytest.raises(ValueError, match="stencil"):
        prop._stencil_system(lap, (h, w), radius + 1, d, dtype)


def test_direct_solve_matches_general_lu():
    # the symmetric-mode factorisation solves the same system as SuperLU's general LU
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    from pymatting import cf_laplacian
    from skimage import data

    img = data.astronaut()[::8, ::8].astype(np.float64) / 255.0  # 64x64
    rng = np.random.default_rng(3)
    mask = rng.random(img.shape[:2]) < 0.05
    values = np.where(mask, rng.uniform(0.5, 2.0, mask.shape), 0.0)
    out = prop.matting_propagation(values, mask, img, solver="direct")
    d = mask.ravel().astype(np.float64)
    a = (cf_laplacian(img, 1e-5, 1) + 0.005 * sp.diags(d)).tocsc()
    ref = spla.spsolve(a, 0.005 * d * values.ravel(), permc_spec="MMD_ATA")
    np.testing.assert_allclose(out.ravel(), ref.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_strength_from_pattern_gives_the_same_hierarchy():
    # the finest level aggregates from A's pattern: the hierarchy of pyamg's default strength
    import pyamg

    ml, b, x0 = _system()
    a = ml.levels[0].A
    opts = {
        "B": np.column_stack(
            [np.ones(a.shape[0]), np.random.default_rng(0).random((a.shape[0], 3))]
        ),
        "symmetry": "symmetric",
        "smooth": None,
        "max_coarse": 200,
        "improve_candidates": None,
    }
    ref = pyamg.smoothed_aggregation_solver(a, **opts)
    out = pyamg.smoothed_aggregation_solver(a, strength=[None, "symmetric"], **opts)
    assert len(out.levels) == len(ref.levels) >= 3
    for lo, lr in zip(out.levels, ref.levels, strict=True):
        assert (lo.A != lr.A).nnz == 0
        if hasattr(lr, "P"):
            assert (lo.P != lr.P).nnz == 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (40, 1), (3, 5), (37, 61), (64, 64)])
@pytest.mark.parametrize("reach", [1, 2, 4])
def test_nested_dissection_is_a_permutation(shape, reach):
    order = prop.grid_nested_dissection(*shape, reach=reach)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(np.sort(order), np.arange(shape[0] * shape[1]))


def test_nested_dissection_separators_split_the_grid():
    # George's property: the last `reach` columns eliminated cut a wide grid into two halves
    # that no stencil entry of reach 2 joins, ordered one after the other
    h, w, reach = 9, 40, 2
    order = prop.grid_nested_dissection(h, w, reach=reach, leaf=1)
    xs = order % w
    assert set(np.unique(xs[-h * reach :])) == {19, 20}  # the separator, eliminated last
    half = (h * w - h * reach) // 2
    assert xs[:half].max() < 19 and xs[half : -h * reach].min() > 20


def test_nested_dissection_fills_less_than_row_order():
    # the Cholesky-like factor of a reach-2 stencil matrix (the matting Laplacian's pattern at
    # radius 1) in nested-dissection order holds fewer entries than in row-major order
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    from pymatting import cf_laplacian

    rng = np.random.default_rng(0)
    img = rng.random((96, 96, 3))
    a = (cf_laplacian(img, 1e-5, 1) + sp.eye(96 * 96)).tocsr()

    def fill(order):
        ap = a[order][:, order].tocsc()
        lu = spla.splu(
            ap, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
        return lu.L.nnz

    nd = fill(prop.grid_nested_dissection(96, 96, reach=2))
    assert nd < 0.6 * fill(np.arange(96 * 96))


def test_direct_solve_on_a_wide_image_matches_general_lu():
    # nested dissection on a non-square grid (cuts along both sides) gives the exact solution
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    from pymatting import cf_laplacian
    from skimage import data

    img = data.coffee()[::9, ::9].astype(np.float64) / 255.0  # 45x67
    rng = np.random.default_rng(4)
    mask = rng.random(img.shape[:2]) < 0.05
    values = np.where(mask, rng.uniform(0.5, 2.0, mask.shape), 0.0)
    out = prop.matting_propagation(values, mask, img, epsilon=1e-7, solver="direct")
    d = mask.ravel().astype(np.float64)
    a = (cf_laplacian(img, 1e-7, 1) + 0.005 * sp.diags(d)).tocsc()
    ref = spla.spsolve(a, 0.005 * d * values.ravel(), permc_spec="MMD_ATA")
    np.testing.assert_allclose(out.ravel(), ref.astype(np.float32), rtol=1e-5, atol=1e-5)


def test_propagation_benchmark_prints_its_rows(root):
    # benchmarks/bench_propagation.py (the README's figures for the direct solve) runs, and the
    # nested-dissection solution equals the minimum-degree one
    import re
    import subprocess
    import sys

    script = root / "benchmarks" / "bench_propagation.py"
    r = subprocess.run(
        [sys.executable, str(script), "--scale", "0.15", "--tols", "1e-2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    row = re.search(r"\| direct, nested dissection \| [\d.]+ \| (\d+) \| ([\d.e+-]+) \|", r.stdout)
    assert row and int(row.group(1)) > 0 and float(row.group(2)) < 1e-8, r.stdout
    assert "| direct, minimum degree |" in r.stdout and "AMG-CG float64, residual 0.01" in r.stdout
