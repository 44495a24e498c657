"""Hand-crafted defocus features of Park et al. (CVPR'17, DHDE), batched over patches.

Three features of a grey (HSV V channel) patch, each ``log(1 + x)`` and L1-normalised
(Eqs. 1, 2, 4 of the paper; ``FeatureExtractor.m`` of the authors' release):

* **DCT** ``f_D`` (Sec. 3.2, Eq. 1): the patch, zero-padded (at its end) to 32x32 (27x27
  patches) or 16x16 (15x15 patches), goes through an orthonormal 2-D DCT-II; the mean
  ``|coefficient|`` is taken over radial rings ``rho = sqrt(u^2 + v^2)`` whose boundaries split
  ``[0, size - 1]`` into ``n`` equal parts, each ring widened by 10 % of a ring's width on both
  sides (``ParameterSetting.m``: ``nSizeDCT = [32, 16]``, ``rOverlapDCT = 0.1``).
* **gradient** ``f_G`` (Sec. 3.3, Eq. 2): the histogram, over ``n`` equal bins of ``[0, 1]``
  (values above 1 fall in the last bin, as MATLAB's ``hist`` with bin centres does), of the
  gradient magnitude. The paper says "Sobel"; the release uses forward differences divided
  by ``sqrt(2)`` (``DHDE_feature_extraction.m``), which :func:`gradient_magnitude` follows;
  ``kind="sobel"`` gives the paper's wording.
* **SVD** ``f_S`` (Sec. 3.4, Eq. 4): the ``n`` largest singular values of the patch.

``n`` is 25 for large (27x27) and 13 for small (15x15) patches (Sec. 5.3). The **scale
encoding** of Sec. 5.2 / Figure 7 places a feature in the slots of its scale and adds a
constant 1 there; the other scale's slots are zeros. The layout of one 40-d feature type is
the release's: ``[large bins (25), 1, small bins (13), 1]``. :func:`handcrafted_features`
returns ``[f_D, f_G, f_S]`` = 120 dims.

Scale index convention of this package: ``0`` = small patch (15x15, strong edge),
``1`` = large patch (27x27, weak edge).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: patch side per scale index (0 = small / strong edge, 1 = large / weak edge); Sec. 5.3
PATCH_SIZE = (15, 27)
#: feature bins per scale, n_D = n_G = n_S (Sec. 5.3: 13 small, 25 large)
N_BINS = (13, 25)
#: DCT size the patch is zero-padded to (ParameterSetting.m: nSizeDCT = [32, 16])
DCT_SIZE = (16, 32)
#: ring widening, fraction of a ring's width (ParameterSetting.m: rOverlapDCT = 0.1)
DCT_OVERLAP = 0.1
#: dims of one scale-encoded feature type: 25 + 1 + 13 + 1 (Figure 7)
FEATURE_DIM = N_BINS[1] + 1 + N_BINS[0] + 1
#: slice of each scale's bins in the encoded feature (large first, as in the release)
SLOTS = (slice(N_BINS[1] + 1, FEATURE_DIM - 1), slice(0, N_BINS[1]))
#: position of each scale's constant 1 (Sec. 5.2, "additional constants")
CONSTANT_POS = (FEATURE_DIM - 1, N_BINS[1])
#: names and order of the 40-d blocks in the 120-d hand-crafted vector
FEATURE_NAMES = ("fD", "fG", "fS")

_EPS = 1e-12


def _check_patches(gray: np.ndarray, scale: int | None = None) -> np.ndarray:
    gray = np.asarray(gray)
    if gray.ndim != 3 or gray.shape[1] != gray.shape[2]:
        raise ValueError(f"expected square grey patches of shape (N, s, s), got {gray.shape}")
    if scale is not None:
        check_scale(scale)
        if gray.shape[1] != PATCH_SIZE[scale]:
            raise ValueError(
                f"scale {scale} expects {PATCH_SIZE[scale]}x{PATCH_SIZE[scale]} patches, "
                f"got {gray.shape[1]}x{gray.shape[2]}"
            )
    return gray.astype(np.float64, copy=False)


def check_scale(scale: int) -> int:
    """Validate a scale index (0 = small 15x15, 1 = large 27x27)."""
    if scale not in (0, 1):
        raise ValueError(f"scale must be 0 (small, 15x15) or 1 (large, 27x27), got {scale!r}")
    return int(scale)


def _l1_log(x: np.ndarray) -> np.ndarray:
    """``log(1 + x)`` normalised to unit sum per row (W_D, W_G, W_S of Eqs. 1, 2, 4)."""
    y = np.log1p(np.maximum(x, 0.0))
    s = y.sum(axis=1, keepdims=True)
    return np.where(s > _EPS, y / np.maximum(s, _EPS), 0.0)


@lru_cache(maxsize=8)
def dct_ring_masks(size: int, n_bins: int, overlap: float = DCT_OVERLAP) -> np.ndarray:
    """Ring weights of Eq. 1: ``(size*size, n_bins)``, each column a ring mask / its area.

    Ring ``k`` holds the DCT coefficients with ``b_k - o <= rho <= b_{k+1} + o``, where
    ``b = linspace(0, size - 1, n_bins + 1)`` and ``o = overlap * (size - 1) / n_bins``
    (ParameterSetting.m). Dividing by the area turns the masked sum into the ring mean.
    """
    yy, xx = np.mgrid[0:size, 0:size]
    rho = np.sqrt(xx**2 + yy**2).ravel()
    bounds = np.linspace(0.0, size - 1, n_bins + 1)
    pad = overlap * (size - 1) / n_bins
    masks = (rho[:, None] >= bounds[None, :-1] - pad) & (rho[:, None] <= bounds[None, 1:] + pad)
    area = masks.sum(axis=0)
    if np.any(area == 0):
        raise ValueError(f"empty DCT ring for size {size} and {n_bins} bins")
    w = masks / area[None, :]
    w.setflags(write=False)
    return w


@lru_cache(maxsize=8)
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (MATLAB ``dctmtx``): ``D @ x`` is the DCT of column x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d


def dct_features(gray: np.ndarray, scale: int) -> np.ndarray:
    """DCT ring-power feature ``f_D`` (Eq. 1) of grey patches, ``(N, n_bins)``.

    Parameters
    ----------
    gray : ndarray, (N, s, s)
        Grey patches in [0, 1]; ``s`` is 15 for ``scale=0`` and 27 for ``scale=1``.
    scale : int
        0 (small: 13 bins, padded to 16) or 1 (large: 25 bins, padded to 32).
    """
    gray = _check_patches(gray, scale)
    size, n_bins = DCT_SIZE[scale], N_BINS[scale]
    n, s = gray.shape[0], gray.shape[1]
    # D X D^T of the patch zero-padded at its end (MATLAB padarray(..., 'post')) to size x size:
    # only the first s columns of D meet non-zero data; two tensordots run as BLAS GEMMs
    # float32: twice the BLAS throughput; the features are log-compressed and L1-normalised
    dt = np.ascontiguousarray(_dct_matrix(size)[:, :s].T, dtype=np.float32)  # (s, size)
    g32 = gray.astype(np.float32).reshape(n * s, s)
    half = (g32 @ dt).reshape(n, s, size)  # rows transformed
    half = np.ascontiguousarray(half.transpose(0, 2, 1)).reshape(n * size, s)
    coef = np.abs(half @ dt).reshape(n, size * size)  # (u, v) order: rho is symmetric
    return _l1_log((coef @ dct_ring_masks(size, n_bins).astype(np.float32)).astype(np.float64))


def gradient_magnitude(gray: np.ndarray, kind: str = "forward") -> np.ndarray:
    """Gradient magnitude over the last two axes of ``gray`` (image or stack of patches).

    ``kind="forward"`` (release, DHDE_feature_extraction.m): forward differences, the last
    column / row repeating the previous difference, ``sqrt(gx^2 + gy^2) / sqrt(2)``.
    ``kind="sobel"`` (the paper's wording, Sec. 3.3): 3x3 Sobel, divided by 4 * sqrt(2) so a
    unit step has about the same magnitude as with forward differences.
    """
    g = np.asarray(gray, dtype=np.float64)
    if g.ndim < 2 or min(g.shape[-2:]) < 2:
        raise ValueError(f"expected an array of at least 2x2 in its last two axes, got {g.shape}")
    if kind == "forward":
        gx = np.diff(g, axis=-1)
        gx = np.concatenate([gx, gx[..., -1:]], axis=-1)
        gy = np.diff(g, axis=-2)
        gy = np.concatenate([gy, gy[..., -1:, :]], axis=-2)
        return np.sqrt(gx**2 + gy**2) / np.sqrt(2.0)
    if kind == "sobel":
        from scipy import ndimage

        kx = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        lead = (1,) * (g.ndim - 2)  # no smoothing across patches of a stack
        gx = ndimage.correlate(g, kx.reshape(lead + (3, 3)), mode="nearest")
        gy = ndimage.correlate(g, kx.T.reshape(lead + (3, 3)), mode="nearest")
        return np.sqrt(gx**2 + gy**2) / (4.0 * np.sqrt(2.0))
    raise ValueError(f"gradient kind must be 'forward' or 'sobel', got {kind!r}")


def gradient_features(
    gray: np.ndarray, scale: int, grad: np.ndarray | None = None, kind: str = "forward"
) -> np.ndarray:
    """Gradient histogram feature ``f_G`` (Eq. 2), ``(N, n_bins)``.

    Parameters
    ----------
    gray : ndarray, (N, s, s)
        Grey patches in [0, 1] (used only when ``grad`` is None).
    scale : int
        0 (13 bins) or 1 (25 bins).
    grad : ndarray, (N, s, s), optional
        Gradient-magnitude patches cut from the whole image's gradient (the release does
        this, so the last column sees the pixel beyond the patch); computed inside each
        patch with :func:`gradient_magnitude` when omitted.
    """
    gray = _check_patches(gray, scale)
    if grad is None:
        grad = gradient_magnitude(gray, kind)
    grad = np.asarray(grad, dtype=np.float64)
    if grad.shape != gray.shape:
        raise ValueError(f"grad patches {grad.shape} do not match grey patches {gray.shape}")
    n_bins = N_BINS[scale]
    n = grad.shape[0]
    # MATLAB hist(x, centres) with centres at the middles of linspace(0, 1, n + 1): equal bins
    # of [0, 1], values beyond either end fall in the first / last bin
    idx = np.clip(np.floor(grad.reshape(n, -1) * n_bins), 0, n_bins - 1).astype(np.int64)
    idx += (np.arange(n) * n_bins)[:, None]
    counts = np.bincount(idx.ravel(), minlength=n * n_bins).reshape(n, n_bins)
    return _l1_log(counts.astype(np.float64))


def svd_features(gray: np.ndarray, scale: int) -> np.ndarray:
    """Singular-value feature ``f_S`` (Eq. 4): the ``n_bins`` largest singular values."""
    gray = _check_patches(gray, scale)  # float64
    # singular values as square roots of the Gram matrix's eigenvalues (batched symmetric
    # eigensolver, ~1.4x faster than batched SVD; the same values to ~1e-9 on [0, 1] patches)
    gram = np.matmul(gray.transpose(0, 2, 1), gray)
    sv = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))[:, ::-1]  # descending
    return _l1_log(sv[:, : N_BINS[scale]])


def encode_scale(feature: np.ndarray, scale: int) -> np.ndarray:
    """Place an ``(N, n_bins)`` feature in its scale's slots of a 40-d vector (Figure 7).

    The scale's constant 1 is set (Sec. 5.2: it acts as a per-scale bias); the other scale's
    bins and constant stay 0.
    """
    check_scale(scale)
    feature = np.asarray(feature)
    if feature.ndim != 2 or feature.shape[1] != N_BINS[scale]:
        raise ValueError(
            f"scale {scale} expects features of shape (N, {N_BINS[scale]}), got {feature.shape}"
        )
    out = np.zeros((feature.shape[0], FEATURE_DIM), dtype=np.float32)
    out[:, SLOTS[scale]] = feature
    out[:, CONSTANT_POS[scale]] = 1.0
    return out


def handcrafted_features(
    gray: np.ndarray, scale: int, grad: np.ndarray | None = None, kind: str = "forward"
) -> np.ndarray:
    """``f_H = [f_D, f_G, f_S]``, each scale-encoded: float32 ``(N, 120)``.

    Parameters
    ----------
    gray : ndarray, (N, s, s)
        Grey (HSV V) patches in [0, 1] of one scale.
    scale : int
        0 for 15x15 patches, 1 for 27x27 patches.
    grad : ndarray, (N, s, s), optional
        Gradient-magnitude patches (see :func:`gradient_features`).
    """
    gray = _check_patches(gray, scale)
    if gray.shape[0] == 0:
        return np.zeros((0, 3 * FEATURE_DIM), dtype=np.float32)
    return np.concatenate(
        [
            encode_scale(dct_features(gray, scale), scale),
            encode_scale(gradient_features(gray, scale, grad, kind), scale),
            encode_scale(svd_features(gray, scale), scale),
        ],
        axis=1,
    )


def value_channel(rgb: np.ndarray) -> np.ndarray:
    """HSV V channel, ``max(R, G, B)``, of an RGB array (uint8 -> [0, 1]); Sec. 3."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"expected RGB data with a last axis of 3, got shape {rgb.shape}")
    v = rgb.max(axis=-1)
    return v.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else v.astype(np.float64)
