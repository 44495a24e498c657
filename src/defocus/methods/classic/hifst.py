"""High-frequency multiscale Fusion and Sort Transform (``hifst``).

S. A. Golestaneh, L. J. Karam, "Spatially-varying blur detection based on multiscale fused
and sorted transform coefficients of gradient magnitudes", CVPR 2017. Constants
cross-checked against the authors' public MATLAB release (github.com/isalirezag/HiFST,
HiFST.m); no code was taken from it.

Pipeline (paper Sec. 3; release HiFST.m)
----------------------------------------
1. Grey image of the RGB image pre-blurred with a Gaussian of sigma 0.5; Sobel gradient
   magnitude ``G`` (MATLAB ``imgradient``), zero-padded by 31.
2. For each pixel and each block size M_r = 2^(2+r) - 1 (7, 15, 31, 63), the orthonormal
   2-D DCT-II of the M_r x M_r block of ``G`` centred on the pixel; the high-frequency
   coefficients are those with ``u + v >= M_r - 1`` (0-based; the release's ``FreqBands``
   label 0), M_r (M_r + 1) / 2 of them per block.
3. The absolute high-frequency coefficients of all four blocks are pooled and sorted in
   ascending order; the first ``sum(M_r) + 1 = 117`` sorted values form 117 layers.
4. Each layer is min-max normalised over the image; the map T is the max over layers.
5. D = entropy(T in 7x7, 256 bins) * T (normalised T).
6. Edge-aware smoothing with the domain-transform recursive filter (Gastal & Oliveira
   2011) with sigma_s = 15, sigma_r = 0.25, 3 iterations, guided by the normalised grey
   image smoothed by a 3x3 Gaussian of sigma 1; OpenCV's ``ximgproc.dtFilter`` (DTF_RF).

The result is a sharpness map; the blur map is ``1 - normalised`` result.

Every pixel, and a speed option
-------------------------------
The release evaluates step 2 at every pixel (its ``Slid`` parameter, 1 in the paper),
about 2,500 s per CUHK image; so does the default ``stride = 1``. With ``stride > 1`` the
block transforms are evaluated on a grid of every ``stride``-th pixel as batched float32
matrix products ``D B D^T``
(``stride`` is the release's ``Slid``); T is interpolated bilinearly to full resolution
before the 7x7 entropy and the filter, so steps 5-6 keep their pixel units.

``stride = 1`` is the exact method, computed by :mod:`._hifst_dense`: sliding-DCT
recurrences down each pixel column in float64 and a threshold-and-sort selection of the 117
smallest coefficients (about 1 s per 640x427 image on one core instead of about 15 s for
the block products at every pixel). Its layers equal a float64 evaluation of the block
DCTs up to float64 rounding; the float32 block products (:func:`grid_layers` with stride
1) differ from both by their own float32 rounding, about 1e-3 of T.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from defocus.methods.base import Method, check_image, minmax_normalise
from defocus.methods.classic._common import check_odd_window, check_positive, grid_to_full


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (MATLAB ``dctmtx``): ``dct(x) = C @ x``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c.astype(np.float32)


def high_frequency_mask(n: int) -> np.ndarray:
    """Boolean (n, n) mask of the high-frequency DCT band: ``u + v >= n - 1`` (0-based)."""
    u = np.arange(n)
    return (u[:, None] + u[None, :]) >= n - 1


def sorted_high_frequency(blocks: list[np.ndarray], n_layers: int) -> np.ndarray:
    """Sorted absolute high-frequency DCT coefficients pooled over block sizes.

    Parameters
    ----------
    blocks : list of ndarray, each (N, M_r, M_r)
        The same N positions at each block size.
    n_layers : int
        How many of the smallest sorted coefficients to keep.

    Returns
    -------
    ndarray, float32 (N, n_layers)
        Ascending.
    """
    feats = []
    for b in blocks:
        b = np.asarray(b, dtype=np.float32)
        m = b.shape[-1]
        c = dct_matrix(m)
        coef = np.abs(c @ b @ c.T)
        feats.append(coef[:, high_frequency_mask(m)])
    h = np.concatenate(feats, axis=1)
    if not 1 <= n_layers <= h.shape[1]:
        raise ValueError(f"n_layers must be in [1, {h.shape[1]}], got {n_layers!r}")
    if n_layers < h.shape[1]:
        h = np.partition(h, n_layers - 1, axis=1)[:, :n_layers]
    return np.sort(h, axis=1)


def gradient_magnitude(image: np.ndarray, sigma: float) -> np.ndarray:
    """Sobel gradient magnitude of the grey, Gaussian-pre-blurred image (0..255 scale)."""
    f = image.astype(np.float32)
    if sigma > 0:
        f = cv2.GaussianBlur(f, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx * gx + gy * gy), g


def grid_layers(grad: np.ndarray, sizes: list[int], stride: int, n_layers: int) -> np.ndarray:
    """Sorted layers of the blocks centred on every ``stride``-th pixel, float32 block
    products (the ``stride > 1`` path): (ceil(H / stride), ceil(W / stride), n_layers)."""
    h, w = grad.shape
    big = sizes[-1]
    pad = big // 2
    # zero padding, as MATLAB padarray's default in the release
    gp = np.pad(grad, pad, mode="constant")
    ny, nx = len(range(0, h, stride)), len(range(0, w, stride))
    views = []
    for m in sizes:
        off = pad - m // 2
        sub = gp[off : off + h - 1 + m, off : off + w - 1 + m]
        views.append(sliding_window_view(sub, (m, m))[::stride, ::stride])
    layers = np.empty((ny, nx, n_layers), dtype=np.float32)
    # rows of the grid per chunk: bound the 63x63 block stack to ~16 MB
    step = max(1, 1024 // max(1, nx))
    for y0 in range(0, ny, step):
        y1 = min(ny, y0 + step)
        blocks = [v[y0:y1].reshape(-1, v.shape[-1], v.shape[-1]) for v in views]
        layers[y0:y1] = sorted_high_frequency(blocks, n_layers).reshape(y1 - y0, nx, -1)
    return layers


class HiFST(Method):
    """Golestaneh & Karam 2017 HiFST blur detection (every pixel; ``stride`` > 1 for speed).

    Parameters
    ----------
    pre_sigma : float
        Gaussian pre-blur (paper Sec. 3, release ``imgaussfilt(I, 0.5)``).
    block_sizes : list of int
        Odd DCT block sides M_r = 2^(2+r) - 1, r = 1..4 (paper Eq. 2 region; release Flag=1).
    entropy_window : int
        Local-entropy window (paper Sec. 3.2, release ``entropyfilt(., true(7))``).
    sigma_s, sigma_r, rf_iters : float, float, int
        Domain-transform recursive filter (release ``RF(D, 15, 0.25, 3, ...)``).
    guide_sigma : float
        Sigma of the 3x3 Gaussian smoothing the filter's guide (release ``fspecial
        ('gaussian', [3 3], 1)``).
    stride : int
        Block-DCT grid step (the release's ``Slid``): 1, the default, is the exact method
        (every pixel, the fast dense path); > 1 is a speed option (a grid, interpolated).
    """

    name = "hifst"
    fidelity = {
        "implementation": "faithful",
        "differs": "block DCTs of every pixel in float64, as the release (MATLAB doubles)",
    }
    #: stride > 1 computes the sorted coefficients on a grid and interpolates (the release
    #: evaluates every pixel)
    faithful_params = {"stride": 1}
    citation = (
        "Golestaneh & Karam, Spatially-varying blur detection based on multiscale fused "
        "and sorted transform coefficients of gradient magnitudes, CVPR 2017"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "pre_sigma": 0.5,
        "block_sizes": [7, 15, 31, 63],
        "entropy_window": 7,
        "sigma_s": 15.0,
        "sigma_r": 0.25,
        "rf_iters": 3,
        "guide_sigma": 1.0,
        "stride": 1,
    }

    def feature_map(self, image: np.ndarray) -> np.ndarray:
        """T: max over normalised sorted-coefficient layers, full resolution, in [0, 1]."""
        image = check_image(image)
        sizes = sorted(check_odd_window("block_sizes", m) for m in self.params["block_sizes"])
        if not sizes:
            raise ValueError("block_sizes must list at least one odd block side, got []")
        stride = int(self.params["stride"])
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {self.params['stride']!r}")
        grad, _ = gradient_magnitude(image, float(self.params["pre_sigma"]))
        h, w = grad.shape
        n_layers = sum(sizes) + 1
        if stride == 1:
            from defocus.methods.classic._hifst_dense import (
                max_normalised_layer,
                sorted_layers_dense,
            )

            layers = sorted_layers_dense(grad, sizes, n_layers)  # (W, H, n_layers)
            t = np.ascontiguousarray(max_normalised_layer(layers).T)
        else:
            layers = grid_layers(grad, sizes, stride, n_layers)
            lo = layers.min(axis=(0, 1), keepdims=True)
            hi = layers.max(axis=(0, 1), keepdims=True)
            norm = (layers - lo) / np.where(hi - lo > 1e-12, hi - lo, 1.0)
            t = norm.max(axis=2)
        return minmax_normalise(grid_to_full(t, stride, (h, w)))

    def sharpness(self, image: np.ndarray) -> np.ndarray:
        """The filtered HiFST sharpness map (high = sharp), min-max normalised."""
        from skimage.filters.rank import entropy

        image = check_image(image)
        t = self.feature_map(image)
        ew = check_odd_window("entropy_window", self.params["entropy_window"])
        ent = entropy(np.round(t * 255).astype(np.uint8), np.ones((ew, ew), dtype=bool))
        d = (ent.astype(np.float32) * t).astype(np.float32)
        gray = minmax_normalise(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32))
        gs = check_positive("guide_sigma", self.params["guide_sigma"])
        guide = cv2.GaussianBlur(gray, (3, 3), gs, borderType=cv2.BORDER_REPLICATE)
        out = cv2.ximgproc.dtFilter(
            guide,
            d,
            check_positive("sigma_s", self.params["sigma_s"]),
            check_positive("sigma_r", self.params["sigma_r"]),
            mode=cv2.ximgproc.DTF_RF,
            numIters=int(self.params["rf_iters"]),
        )
        return minmax_normalise(out)

    def predict(self, image: np.ndarray) -> np.ndarray:
        return (1.0 - self.sharpness(image)).astype(np.float32)
