"""Defocus map from the gradient ratio of re-blurred images (``zhuo_sim``).

S. Zhuo, T. Sim, "Defocus map estimation from a single image", Pattern Recognition 44(9),
2011, pp. 1852-1858.

Model
-----
A step edge of amplitude A blurred by a Gaussian of unknown sigma, re-blurred by a
Gaussian of sigma_k, has gradient magnitude ``A / sqrt(2 pi (sigma^2 + sigma_k^2))`` at the
edge. The paper re-blurs once (sigma0 = 1) and takes R = |grad i| / |grad i_reblur|, giving
``sigma = sigma0 / sqrt(R^2 - 1)`` (paper Eq. 6). Like the authors' later public code
(defocusEstimation.m: std1 = std, std2 = 1.5 std), this module re-blurs twice, s1 < s2, and
uses the ratio of the two re-blurred gradients, R = |grad(g_s1 * i)| / |grad(g_s2 * i)|:

    R^2 = (sigma^2 + s2^2) / (sigma^2 + s1^2)
    =>  sigma = sqrt((R^2 s1^2 - s2^2) / (1 - R^2)),   valid for 1 < R <= s2 / s1.

The ratio is taken at Canny edges only (paper Sec. 3.1), clipped to ``max_blur``, and then
propagated to every pixel with the matting Laplacian (paper Sec. 3.2, Eq. 9):
``(L + lambda D) d = lambda D d_hat``, D marking the edge pixels.

``predict_raw`` returns the full sigma map in pixels; ``predict`` min-max normalises it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from defocus.methods.base import Method, check_image
from defocus.methods.classic._common import check_positive, to_gray
from defocus.methods.propagation import matting_propagation


def reblur_gradient(gray: np.ndarray, sigma: float) -> np.ndarray:
    """|grad (g_sigma * gray)|: Gaussian-derivative gradient magnitude, replicate borders."""
    g = np.asarray(gray, dtype=np.float64)
    # truncate 4 sigma: the discrete kernel is a close sampling of the continuous derivative
    gx = ndimage.gaussian_filter(g, sigma, order=(0, 1), mode="nearest", truncate=4.0)
    gy = ndimage.gaussian_filter(g, sigma, order=(1, 0), mode="nearest", truncate=4.0)
    return np.hypot(gx, gy)


def sigma_from_ratio(ratio: np.ndarray, s1: float, s2: float) -> np.ndarray:
    """Blur sigma from the two-re-blur gradient ratio R (NaN where 1 < R <= s2/s1 fails).

    ``sigma = sqrt((R^2 s1^2 - s2^2) / (1 - R^2))``; R -> s2/s1 gives 0 (sharp) and R -> 1
    gives infinity (very blurred).
    """
    if not 0 < s1 < s2:
        raise ValueError(f"need 0 < s1 < s2, got s1={s1!r}, s2={s2!r}")
    r = np.asarray(ratio, dtype=np.float64)
    valid = (r > 1.0) & (r <= s2 / s1)
    r2 = np.where(valid, r * r, 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sig2 = (r2 * s1 * s1 - s2 * s2) / (1.0 - r2)
    return np.where(valid, np.sqrt(np.maximum(sig2, 0.0)), np.nan)


def sparse_defocus(gray: np.ndarray, edges: np.ndarray, s1: float, s2: float) -> np.ndarray:
    """Sigma at edge pixels (NaN elsewhere or where the ratio is out of its valid range)."""
    ratio = reblur_gradient(gray, s1) / np.maximum(reblur_gradient(gray, s2), 1e-12)
    sig = sigma_from_ratio(ratio, s1, s2)
    # the release keeps ratios > 1.01 only (defocusEstimation.m): R near 1 is unstable
    sig[ratio <= 1.01] = np.nan
    sig[~edges] = np.nan
    return sig


class ZhuoSim(Method):
    """Zhuo & Sim 2011 defocus map (two re-blurs, matting propagation).

    Parameters
    ----------
    s1 : float
        First re-blur sigma (paper Sec. 3.1: sigma0 = 1; release ``std = 1``).
    s2_factor : float
        s2 = s2_factor * s1 (release defocusEstimation.m: 1.5).
    canny_sigma : float
        Gaussian sigma of the Canny detector (MATLAB ``edge(., 'canny')`` default: sqrt 2).
    max_blur : float
        Sparse sigmas are clipped to this (release ``maxBlur = 3`` px).
    lam : float
        Data weight lambda of the propagation (paper Sec. 3.2: 0.005; Park et al. CVPR 2017
        use the same gamma = 0.005 for the same solve).
    matting_epsilon : float
        Matting Laplacian regulariser (Levin et al. 2008: 1e-7).
    matting_scale : float
        Resolution of the sparse solve (1 = full, exact; our speed approximation: 0.5).
    """

    name = "zhuo_sim"
    fidelity = {
        "implementation": "faithful",
        "differs": (
            "re-blur gradient ratio at Canny edges, matting propagation; sigma clipped at max_blur"
        ),
    }
    #: matting_scale < 1 solves the propagation on a resized image (the paper: full size)
    faithful_params = {"matting_scale": 1.0}
    has_raw = True
    raw_unit = "px"
    citation = "Zhuo & Sim, Defocus map estimation from a single image, Pattern Recognition 2011"
    #: the resize factor of the matting solve
    bounds = {"matting_scale": "(0, 1]"}
    defaults: ClassVar[dict[str, Any]] = {
        "s1": 1.0,
        "s2_factor": 1.5,
        "canny_sigma": float(np.sqrt(2.0)),
        # "matlab": edge(gray, 'canny') with its automatic thresholds, as the authors' MATLAB
        # code would call it (defocus.features.canny); "skimage": scikit-image's defaults
        "canny_impl": "matlab",
        "max_blur": 3.0,
        "lam": 0.005,
        "matting_epsilon": 1e-7,
        "matting_scale": 0.5,
    }

    def sparse_map(self, image: np.ndarray) -> np.ndarray:
        """Sigma (px) at Canny edges, NaN elsewhere."""
        image = check_image(image)
        s1 = check_positive("s1", self.params["s1"])
        f = float(self.params["s2_factor"])
        if f <= 1:
            raise ValueError(f"s2_factor must be > 1 (s2 > s1), got {self.params['s2_factor']!r}")
        gray = to_gray(image)
        sigma = check_positive("canny_sigma", self.params["canny_sigma"])
        impl = self.params["canny_impl"]
        if impl == "matlab":
            from defocus.features.canny import matlab_canny

            edges = matlab_canny(gray, sigma=sigma)
        elif impl == "skimage":
            from skimage.feature import canny

            edges = canny(gray, sigma=sigma)
        else:
            raise ValueError(f"canny_impl must be 'matlab' or 'skimage', got {impl!r}")
        return sparse_defocus(gray, edges, s1, f * s1)

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        sparse = self.sparse_map(image)
        max_blur = check_positive("max_blur", self.params["max_blur"])
        known = np.isfinite(sparse)
        values = np.where(known, np.minimum(sparse, max_blur), 0.0)
        full = matting_propagation(
            values.astype(np.float32),
            known.astype(np.float32),
            image.astype(np.float64) / 255.0,
            lam=check_positive("lam", self.params["lam"]),
            epsilon=float(self.params["matting_epsilon"]),
            scale=float(self.params["matting_scale"]),
            solver="direct",
        )
        return np.clip(full, 0.0, max_blur).astype(np.float32)
