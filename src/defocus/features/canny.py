"""Canny edges with the semantics of MATLAB's ``edge(I, 'canny', [low high], sigma)``.

The DHDE release finds its edges with ``edge(gryImg, 'canny', [edgeThLow(k), edgeThHigh(k)])``
(``EdgeExtractor.m``) on the HSV V channel in [0, 1]. The steps below follow the Image
Processing Toolbox ``edge.m`` of the release's time (copyright 1992-2017; the algorithm
introduced in R2011a), read for its definition:

1. ``smoothGradient``: a 1-D Gaussian ``exp(-x^2 / (2 sigma^2))`` on ``x = -ceil(4 sigma) ..
   ceil(4 sigma)``, normalised to sum 1, and its numerical derivative (MATLAB ``gradient``:
   central differences, one-sided at the ends) with positive and negative taps normalised
   to sum +1 and -1. ``dx`` = the image convolved with the Gaussian along the columns, then
   with the derivative along the rows; ``dy`` the transpose; ``imfilter(..., 'conv',
   'replicate')``.
2. The magnitude ``hypot(dx, dy)`` divided by its maximum; thresholds are in these units.
3. Non-maximum suppression (``cannyFindLocalMaxima``): per pixel one of four gradient
   sectors, the magnitude linearly interpolated at the two neighbours along the gradient,
   kept where it is ``>=`` both and ``> low``; the one-pixel image border is never an edge.
4. Hysteresis (``bwselect(E, c, r, 8)``): the 8-connected components of those maxima that
   contain a pixel ``> high``.

Without thresholds (``edge(I, 'canny')``), ``selectThresholds`` picks them from a 64-bin
``imhist`` of the normalised magnitude: ``high`` = (the first bin whose cumulative count
exceeds 70 % of the pixels) / 64, ``low = 0.4 high``. ``imhist`` of a double image puts ``x``
in bin ``floor(63 x + 0.5)`` (bins centred on ``k / 63``).

scikit-image's :func:`skimage.feature.canny` differs at every step (Sobel of a Gaussian
instead of a derivative-of-Gaussian, constant-mode border, absolute thresholds).
"""

from __future__ import annotations

import math

import numpy as np

#: MATLAB's default Canny sigma
DEFAULT_SIGMA = math.sqrt(2.0)


def gaussian_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(Gaussian, derivative of Gaussian) 1-D taps of ``edge.m``'s ``smoothGradient``."""
    if sigma <= 0:
        raise ValueError(f"Canny sigma must be > 0, got {sigma}")
    ext = math.ceil(4.0 * sigma)
    x = np.arange(-ext, ext + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    g /= g.sum()
    dg = np.gradient(g)  # central differences, one-sided at both ends, as MATLAB's gradient
    pos, neg = dg > 0, dg < 0
    dg[pos] /= dg[pos].sum()
    dg[neg] /= abs(dg[neg].sum())
    return g, dg


def smooth_gradient(image: np.ndarray, sigma: float = DEFAULT_SIGMA) -> tuple[np.ndarray, ...]:
    """``(dx, dy)`` of a 2-D float image: derivative-of-Gaussian, replicate border."""
    from scipy import ndimage

    a = np.asarray(image, dtype=np.float64)
    g, dg = gaussian_kernels(float(sigma))
    # ndimage.convolve1d is a true convolution (the kernel is flipped), like imfilter 'conv'
    dx = ndimage.convolve1d(a, g, axis=0, mode="nearest")
    dx = ndimage.convolve1d(dx, dg, axis=1, mode="nearest")
    dy = ndimage.convolve1d(a, g, axis=1, mode="nearest")
    dy = ndimage.convolve1d(dy, dg, axis=0, mode="nearest")
    return dx, dy


def _local_maxima(dx: np.ndarray, dy: np.ndarray, mag: np.ndarray, low: float) -> np.ndarray:
    """``cannyFindLocalMaxima``: maxima along the gradient (interpolated), ``> low``."""
    h, w = mag.shape
    out = np.zeros((h, w), bool)
    if h < 3 or w < 3:
        return out
    ix, iy, m = dx[1:-1, 1:-1], dy[1:-1, 1:-1], mag[1:-1, 1:-1]

    def at(oy: int, ox: int) -> np.ndarray:  # mag at (y + oy, x + ox) of the interior pixels
        return mag[1 + oy : h - 1 + oy, 1 + ox : w - 1 + ox]

    inner = out[1:-1, 1:-1]
    # a ratio is inf / nan only outside the sectors that use it (as in MATLAB)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_yx = np.abs(iy / ix)
        r_xy = np.abs(ix / iy)
        # (sector, ratio, the two neighbours on one side, the two on the other side); rows
        # are y (MATLAB idx - 1 = one row up), columns x (idx + m = one column right)
        s1 = ((iy <= 0) & (ix > -iy)) | ((iy >= 0) & (ix < -iy))
        s2 = ((ix > 0) & (-iy >= ix)) | ((ix < 0) & (-iy <= ix))
        s3 = ((ix <= 0) & (ix > iy)) | ((ix >= 0) & (ix < iy))
        s4 = ((iy < 0) & (ix <= iy)) | ((iy > 0) & (ix >= iy))
        sectors = (
            (s1, r_yx, (0, 1), (-1, 1), (0, -1), (1, -1)),
            (s2, r_xy, (-1, 0), (-1, 1), (1, 0), (1, -1)),
            (s3, r_xy, (-1, 0), (-1, -1), (1, 0), (1, 1)),
            (s4, r_yx, (0, -1), (-1, -1), (0, 1), (1, 1)),
        )
        for sel, d, a1, b1, a2, b2 in sectors:
            g1 = at(*a1) * (1 - d) + at(*b1) * d
            g2 = at(*a2) * (1 - d) + at(*b2) * d
            inner |= sel & (m >= g1) & (m >= g2)
    out &= mag > low
    return out


#: ``edge.m``'s magic numbers for automatic thresholds
PERCENT_NOT_EDGES = 0.7
THRESHOLD_RATIO = 0.4


def automatic_thresholds(mag: np.ndarray) -> tuple[float, float]:
    """``selectThresholds`` of ``edge.m`` on a magnitude normalised to [0, 1]: (low, high)."""
    bins = np.floor(np.clip(mag, 0.0, 1.0) * 63.0 + 0.5).astype(np.int64)  # imhist(mag, 64)
    counts = np.bincount(bins.ravel(), minlength=64)
    first = int(np.argmax(np.cumsum(counts) > PERCENT_NOT_EDGES * mag.size))  # 0-based bin
    high = (first + 1) / 64.0
    return THRESHOLD_RATIO * high, high


def matlab_canny(
    image: np.ndarray,
    low: float | None = None,
    high: float | None = None,
    sigma: float = DEFAULT_SIGMA,
) -> np.ndarray:
    """Boolean edge map of a 2-D image, as ``edge(image, 'canny', [low high], sigma)``.

    ``low`` and ``high`` are fractions of the largest gradient magnitude; MATLAB requires
    ``low < high < 1``, this function accepts ``0 <= low <= high``. Both ``None``: MATLAB's
    automatic thresholds (:func:`automatic_thresholds`).
    """
    from scipy import ndimage

    auto = low is None and high is None
    if not auto and (low is None or high is None or not 0 <= low <= high):
        raise ValueError(f"Canny thresholds must satisfy 0 <= low <= high, got ({low}, {high})")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"Canny needs a 2-D image, got shape {img.shape}")
    dx, dy = smooth_gradient(img, sigma)
    mag = np.hypot(dx, dy)
    top = float(mag.max()) if mag.size else 0.0
    if top <= 0:
        return np.zeros(img.shape, bool)
    mag /= top
    if auto:
        low, high = automatic_thresholds(mag)
    weak = _local_maxima(dx, dy, mag, float(low))
    strong = weak & (mag > float(high))
    if not strong.any():
        return np.zeros(img.shape, bool)
    labels, _ = ndimage.label(weak, structure=np.ones((3, 3), bool))
    keep = np.unique(labels[strong])
    return np.isin(labels, keep[keep > 0])
