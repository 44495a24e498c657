"""Coarse-to-fine closed-form matting as the LBP release runs it (``solveAlphaC2F``).

Yi & Eramian's release (github xinario/defocus_segmentation, ``localSharpScoreLBP.m``) refines
each scale's sharpness map with ``solveAlphaC2F(I, consts_map, consts_vals, 3, 1)``: Levin et
al.'s closed-form matting solved only at the coarsest of three pyramid levels, then carried
up to full resolution by *image-guided* upsampling (``upSampleAlphaUsingImg.m``): at each
level the matte is locally a linear function of the colour, ``alpha = a . I + b`` (Levin et
al. 2008, Eq. 3), whose coefficients are fitted at the coarse level, upsampled, and applied to
the finer image. Each step below follows one file of the release:

* :func:`down_sample` - ``downSmpIm.m`` with ``filtS = 2``: separable [1 4 6 4 1] / 16,
  ``conv2(..., 'same')`` (zero border), then every second sample from the third to the
  third-last (``I(3:2:end-2, 3:2:end-2)``);
* :func:`up_sample` - ``upSmpIm.m`` with ``filtS = 1``: samples placed on every second pixel
  of the finer grid (offset so the grid is centred), rows and columns beyond the first and last
  sample copied outward on the same parity, then separable [1 2 1] / 2 ``conv2 'same'``;
* :func:`linear_coefficients` - ``getLinearCoeff.m``: per 3x3 window the least-squares
  ``(a, b)`` with ridge ``epsilon`` on ``a``, border windows copied from the nearest interior;
* :func:`solve_alpha` - ``solveAlpha.m``: ``(L + 100 D) x = 100 D v`` with Levin's
  Laplacian (``getLaplacian1.m``, windows whose 3x3 neighbourhood is all constrained are
  skipped: pymatting's ``is_known``), solved exactly (sparse LU), clipped to [0, 1];
* :func:`solve_alpha_c2f` - ``solveAlphaC2F.m`` (constraints downsampled and rounded; with
  more than one active level, confident regions of the upsampled matte join the constraints).
"""

from __future__ import annotations

import numpy as np

#: ``solveAlpha.m``: weight of the constraints
LAMBDA = 100.0
#: ``getLaplacian1.m`` / ``getLinearCoeff.m`` default regulariser
EPSILON = 1e-7
#: ``solveAlphaC2F.m``: a matte within this of 0 or 1 becomes a constraint at finer levels
THR_ALPHA = 0.02

#: smallest side that still gets a coarser level (its down-sampled image is at least 4 x 4)
MIN_SIDE = 11

_DOWN = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
_UP = np.array([1.0, 2.0, 1.0]) / 2.0


def _conv_same(a: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable ``conv2(taps, taps', a, 'same')`` with a zero border, per channel."""
    from scipy import ndimage

    out = ndimage.convolve1d(a, taps, axis=0, mode="constant", cval=0.0)
    return ndimage.convolve1d(out, taps, axis=1, mode="constant", cval=0.0)


def down_sample(a: np.ndarray) -> np.ndarray:
    """``downSmpIm(a, 2)``: blur by [1 4 6 4 1] / 16 and keep ``a[2:-2:2, 2:-2:2]``."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape[0] < 5 or a.shape[1] < 5:
        raise ValueError(f"down_sample needs at least 5x5, got {a.shape[:2]}")
    return _conv_same(a, _DOWN)[2 : a.shape[0] - 2 : 2, 2 : a.shape[1] - 2 : 2]


def _up_axis(a: np.ndarray, new: int, axis: int) -> np.ndarray:
    """``upSmpIm`` along one axis before filtering: samples on every second row of a grid
    of ``new + 2`` rows (one border row each side), copies beyond the first and last."""
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    lo = (new - 2 * n + 1) // 2  # MATLAB id = floor((N - 2 n + 1) / 2)
    if lo < 0:
        raise ValueError(f"cannot upsample {n} samples to {new}")
    out = np.zeros((new + 2, *a.shape[1:]))
    first = lo + 1  # 0-based row of the first sample (MATLAB id + filtS + 1, filtS = 1)
    last = first + 2 * (n - 1)
    out[first : last + 1 : 2] = a
    for row in range(first - 2, -1, -2):  # MATLAB nI(id+filtS-1:-2:1, :) = first sample
        out[row] = a[0]
    for row in range(last + 2, new + 2, 2):  # nI(end-iu-filtS+2:2:end, :) = last sample
        out[row] = a[-1]
    return np.moveaxis(out, 0, axis)


def up_sample(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``upSmpIm(a, shape)`` (``filtS = 1``) of an (h, w) or (h, w, c) array."""
    a = np.asarray(a, dtype=np.float64)
    grid = _up_axis(_up_axis(a, int(shape[0]), 0), int(shape[1]), 1)
    return _conv_same(grid, _UP)[1:-1, 1:-1]


def _box3(a: np.ndarray) -> np.ndarray:
    """Sums over the 3x3 window of every interior pixel: (h - 2, w - 2, ...)."""
    h, w = a.shape[:2]
    return sum(a[dy : h - 2 + dy, dx : w - 2 + dx] for dy in range(3) for dx in range(3))


def linear_coefficients(alpha: np.ndarray, image: np.ndarray, epsilon: float = EPSILON):
    """``getLinearCoeff``: (h, w, c + 1) coefficients ``[a_1..a_c, b]`` of the 3x3 windows.

    Per window: minimise ``sum (alpha - a . I - b)^2 + epsilon |a|^2``; border pixels take
    the coefficients of the nearest interior pixel.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    if h < 3 or w < 3:
        raise ValueError(f"linear_coefficients needs at least 3x3, got {(h, w)}")
    al = np.asarray(alpha, dtype=np.float64)
    s_ii = _box3(img[..., :, None] * img[..., None, :])  # (h-2, w-2, c, c)
    s_i = _box3(img)
    s_ia = _box3(img * al[..., None])
    s_a = _box3(al)
    m = np.zeros((*s_a.shape, c + 1, c + 1))
    m[..., :c, :c] = s_ii + float(epsilon) * np.eye(c)
    m[..., :c, c] = s_i
    m[..., c, :c] = s_i
    m[..., c, c] = 9.0
    rhs = np.concatenate([s_ia, s_a[..., None]], axis=-1)
    coef = np.linalg.solve(m, rhs[..., None])[..., 0]
    return np.pad(coef, ((1, 1), (1, 1), (0, 0)), mode="edge")


def upsample_alpha(alpha: np.ndarray, image: np.ndarray, fine_image: np.ndarray) -> np.ndarray:
    """``upSampleAlphaUsingImg``: the coarse matte's local linear model applied to the
    finer image."""
    fine = np.asarray(fine_image, dtype=np.float64)
    if fine.ndim == 2:
        fine = fine[..., None]
    coef = up_sample(linear_coefficients(alpha, image), fine.shape[:2])
    return coef[..., -1] + np.einsum("hwc,hwc->hw", coef[..., :-1], fine)


def solve_alpha(
    image: np.ndarray,
    consts_map: np.ndarray,
    consts_vals: np.ndarray,
    lam: float = LAMBDA,
    epsilon: float = EPSILON,
) -> np.ndarray:
    """``solveAlpha``: closed-form matte with the constrained pixels, exact sparse solve."""
    import scipy.sparse
    import scipy.sparse.linalg
    from pymatting import cf_laplacian

    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    known = np.asarray(consts_map) > 0
    h, w = known.shape
    if not known.any():
        return np.zeros((h, w))
    # windows whose pixels are all constrained are left out (getLaplacian1.m: imerode)
    lap = cf_laplacian(img, epsilon=float(epsilon), radius=1, is_known=known)
    d = known.ravel().astype(np.float64) * float(lam)
    a = (lap + scipy.sparse.diags(d)).tocsc()
    x = scipy.sparse.linalg.spsolve(a, d * np.asarray(consts_vals, dtype=np.float64).ravel())
    return np.clip(x.reshape(h, w), 0.0, 1.0)


def solve_alpha_c2f(
    image: np.ndarray,
    consts_map: np.ndarray,
    consts_vals: np.ndarray,
    levels: int = 3,
    active_levels: int = 1,
    thr_alpha: float = THR_ALPHA,
    lam: float = LAMBDA,
    epsilon: float = EPSILON,
) -> np.ndarray:
    """``solveAlphaC2F(I, consts_map, consts_vals, levels, active_levels)`` (float64 matte).

    The release calls it with 3 levels and 1 active level: one solve at 1/4 resolution and two
    image-guided x2 upsamplings.
    """
    from scipy import ndimage

    img = np.asarray(image, dtype=np.float64)
    cmap = np.asarray(consts_map, dtype=np.float64)
    cval = np.asarray(consts_vals, dtype=np.float64)
    active = max(int(active_levels), 1)
    alpha = None
    if levels > 1 and min(img.shape[:2]) < MIN_SIDE:
        # too small for another level (the release would fail): solve here
        levels = active = 1
    if levels > 1:
        small = down_sample(img)
        s_map = np.round(down_sample(cmap))
        s_val = np.round(down_sample(cval))
        s_alpha = solve_alpha_c2f(
            small, s_map, s_val, levels - 1, min(levels - 1, active), thr_alpha, lam, epsilon
        )
        alpha = upsample_alpha(s_alpha, small, img)
        if active >= levels:
            talpha = alpha * (1 - cmap) + cval
            box = np.ones((3, 3), bool)
            sure = ndimage.binary_erosion(alpha >= 1 - thr_alpha, box, border_value=1)
            sure |= ndimage.binary_erosion(alpha <= thr_alpha, box, border_value=1)
            cmap = np.minimum(cmap + sure, 1.0)
            cval = np.round(talpha) * cmap
    if active >= levels:
        alpha = solve_alpha(img, cmap, cval, lam, epsilon)
    return alpha
