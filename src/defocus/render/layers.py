"""Layer decomposition, Gaussian windows and input checks of the layered renderer.

The scene is cut into layers of equal quantised CoC, far to near (SYNDOF generator
``get_unique_depth_map_and_coc_image``); each blurred layer gets a normalised 1-D Gaussian
window (see :mod:`defocus.render.layered` for the compositing).
"""

from __future__ import annotations

import math

import numpy as np

from defocus.render.physics import SIGMA_FORMULAS, quantize_coc

#: Blurred-mask values below this are set to 0 (generator ``get_blurred_components``,
#: ``blur_by_depth.m`` l. 282).
MASK_EPS = 1e-4
#: Blurred far-layer union below this is "not near the background" (generator
#: ``inpaint_background_and_modify_merged_mask``, ``blur_by_depth.m`` l. 291).
FILL_EPS = 1e-3
#: Default Gaussian truncation (in sigmas) when no fixed window radius is given.
TRUNCATE = 3.0

BACKENDS = ("numpy", "torch")
#: Background fill rules under layers in front of the focal plane (see the module notes).
FILLS = ("regionfill", "normalized")


def gaussian_kernel_1d(sigma_px: float, radius_px: int) -> np.ndarray:
    """Normalised 1-D Gaussian taps on ``[-radius_px, radius_px]`` (float64)."""
    if sigma_px <= 0 or radius_px < 0:
        raise ValueError(f"need sigma_px > 0 and radius_px >= 0, got {sigma_px}, {radius_px}")
    x = np.arange(-radius_px, radius_px + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_px) ** 2)
    return k / k.sum()


def kernel_radius(sigma_px: float, kernel_radius_px: int | None, truncate: float = TRUNCATE) -> int:
    """Window radius: a fixed ``kernel_radius_px`` or ``ceil(truncate * sigma)`` (>= 1)."""
    if kernel_radius_px is not None:
        if int(kernel_radius_px) < 1:
            raise ValueError(f"kernel_radius_px must be >= 1 or None, got {kernel_radius_px}")
        return int(kernel_radius_px)
    return max(1, int(math.ceil(truncate * sigma_px)))


#: Outer taps of a layer's window whose total weight (both sides) is below this are dropped;
#: the kept taps are the reference's own (not renormalised), so a blurred value moves by
#: < 2e-9, under the float32 rounding of the taps themselves (6e-8 relative).
TAIL = 1e-9


def _effective_radius(k: np.ndarray) -> int:
    """Smallest radius (>= 1) outside which the taps of the window ``k`` weigh < ``TAIL``."""
    r = (len(k) - 1) // 2
    beyond = 2.0 * np.concatenate([np.cumsum(k[:r])[::-1], [0.0]])  # weight outside radius j
    return max(1, int(np.flatnonzero(beyond < TAIL)[0]))


def decompose_layers(coc_px: np.ndarray, depth_m: np.ndarray | None = None):
    """Back-to-front layers of equal quantised CoC.

    With ``depth_m`` the unique depths are sorted far-to-near and runs of adjacent depths
    with equal quantised CoC form one layer (generator ``get_unique_depth_map_and_coc_image``).
    Without it the scene is taken to lie entirely behind the focal plane, so larger CoC
    means farther.

    Returns
    -------
    labels : numpy.ndarray
        ``(H, W)`` int32 layer index, 0 = farthest.
    layer_coc_px : numpy.ndarray
        Quantised CoC (px) per layer, float64.
    """
    coc_q = quantize_coc(coc_px)
    if depth_m is None:
        uniq, inv = np.unique(coc_q, return_inverse=True)
        layer_coc = uniq[::-1]
        labels = (len(uniq) - 1) - inv.reshape(coc_q.shape)
        return labels.astype(np.int32), layer_coc
    depth_m = np.asarray(depth_m)
    if depth_m.shape != coc_q.shape:
        raise ValueError(f"depth_m shape {depth_m.shape} differs from coc_px shape {coc_q.shape}")
    uniq, first, inv = np.unique(depth_m, return_index=True, return_inverse=True)
    coc_far_to_near = coc_q.reshape(-1)[first][::-1]
    inv = (len(uniq) - 1) - inv.reshape(depth_m.shape)
    starts = np.concatenate([[True], np.diff(coc_far_to_near) != 0])
    run_id = np.cumsum(starts) - 1
    return run_id[inv].astype(np.int32), coc_far_to_near[starts]


def _check_inputs(image, coc_px, sigma_formula, backend=None, fill="regionfill"):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected a float image in [0, 1], got dtype {image.dtype}")
    coc_px = np.asarray(coc_px, dtype=np.float64)
    if coc_px.shape != image.shape[:2]:
        raise ValueError(f"coc_px shape {coc_px.shape} differs from image shape {image.shape[:2]}")
    if not np.all(np.isfinite(coc_px)) or np.any(coc_px < 0):
        raise ValueError("coc_px must be finite and >= 0")
    if sigma_formula not in SIGMA_FORMULAS:
        raise ValueError(f"sigma_formula must be one of {SIGMA_FORMULAS}, got {sigma_formula!r}")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    return image, coc_px


def _first_focus_index(layer_coc: np.ndarray) -> int:
    """Index of the first (farthest) layer with CoC <= 1; later layers are in front."""
    idx = np.flatnonzero(layer_coc <= 1.0)
    return int(idx[0]) if idx.size else len(layer_coc)
