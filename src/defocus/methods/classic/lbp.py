"""LBP-based defocus segmentation (``lbp``).

X. Yi, M. Eramian, "LBP-based segmentation of defocus blur", IEEE TIP 25(4), 2016,
pp. 1626-1638; constants cross-checked against the authors' public MATLAB release
(github.com/xinario/defocus_segmentation: demo.m, lbpCode.m, localSharpScoreLBP.m,
multiScaleBlurInferenceFull.m). No code was taken from it.

Pipeline
--------
1. Rotation-invariant uniform LBP codes LBP^{riu2}_{8,1} on the grey image (0..255). As in
   the release, the diagonal neighbours are bilinearly interpolated and floored, and bit p
   is set when ``n_p - n_c > T_LBP`` with ``T_LBP = 0.016`` on [0, 1] intensities (0.016 *
   255 on 0..255). Flat neighbourhoods give code 0; non-uniform patterns give 9.
2. Sharpness (paper Eq. 15): the fraction of codes 6, 7, 8, 9 in an ``s x s`` window, at
   the three scales s = 11, 15, 21 (demo.m), min-max normalised per scale.
3. Matting refinement per scale (paper Eq. 21, release localSharpScoreLBP.m): pixels with
   normalised sharpness > T_m1 = 0.3 are constrained sharp (alpha 1), those < T_m2 = 0.01
   blurred (alpha 0); a closed-form matting solve fills the rest. As the release
   (``solveAlphaC2F`` with 3 levels, only the coarsest active): one solve at 1/4 resolution
   with lambda = 100, carried up by image-guided upsampling of the matte's local linear model
   (:mod:`defocus.methods.classic.c2f_matting`). ``matting=resize`` keeps the earlier
   substitute: a solve on the image resized to ``matting_scale``, upsampled bilinearly.
4. Multiscale inference (paper Eq. 19): a three-layer grid model, 4-neighbour edges inside
   each layer and an edge between the same pixel of adjacent layers, Potts pairwise
   potential ``exp(-alpha)`` for unequal labels (alpha = 0.5, demo.m), unary potentials
   ``exp(-|1 - x|)`` (sharp) and ``exp(-|x|)`` (blurred) on the jointly standardised matted
   maps. The release runs loopy belief propagation (UGM); **we run damped mean-field
   updates instead** (vectorised, ``mf_iters`` sweeps) and read the sharp marginal of the
   s = 21 layer, as the release does.

The blur map is ``1 -`` that sharp probability (1 = blurred).
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from defocus.methods.base import Method, check_image
from defocus.methods.classic._common import (
    check_odd_window,
    check_positive,
    minmax_normalise,
)
from defocus.methods.propagation import matting_propagation

_DIAG = np.sqrt(2.0) / 2.0  # offset of the interpolated diagonal samples for R = 1


def lbp_riu2_codes(gray255: np.ndarray, threshold: float) -> np.ndarray:
    """LBP^{riu2}_{8,1} codes with a contrast threshold (Yi & Eramian 2016, Eqs. 13-14).

    Parameters
    ----------
    gray255 : ndarray, (H, W)
        Grey image on the 0..255 scale (float or integer).
    threshold : float
        T_LBP on the same scale (0.016 * 255 for the paper's 0.016 on [0, 1]).

    Returns
    -------
    ndarray, uint8 (H, W)
        Number of set bits (0..8) for uniform patterns (at most two 0/1 transitions around
        the circle), 9 for non-uniform ones.
    """
    g = np.asarray(gray255, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {g.shape}")
    p = np.pad(g, 1, mode="edge")
    c = g
    right, left = p[1:-1, 2:], p[1:-1, :-2]
    up, down = p[:-2, 1:-1], p[2:, 1:-1]
    ur, ul, dr, dl = p[:-2, 2:], p[:-2, :-2], p[2:, 2:], p[2:, :-2]
    a, b = 1.0 - _DIAG, _DIAG

    def diag(h: np.ndarray, v: np.ndarray, hv: np.ndarray) -> np.ndarray:
        # bilinear sample at (+-sqrt2/2, +-sqrt2/2), floored as in the release's lbpCode
        return np.floor(a * (a * c + b * h) + b * (a * v + b * hv))

    # neighbours in circular order: E, NE, N, NW, W, SW, S, SE
    neigh = np.stack(
        [right, diag(right, up, ur), up, diag(left, up, ul), left, diag(left, down, dl), down]
        + [diag(right, down, dr)]
    )
    bits = (neigh - c[None] - threshold) > 0
    ones = bits.sum(axis=0)
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(axis=0)
    return np.where(transitions > 2, 9, ones).astype(np.uint8)


def lbp_sharpness(gray255: np.ndarray, window: int, threshold: float) -> np.ndarray:
    """Yi & Eramian's m_LBP (Eq. 15): fraction of codes >= 6 in a ``window`` box.

    Returns the raw fraction in [0, 1] (not normalised); a constant image gives 0.
    """
    window = check_odd_window("window", window)
    codes = lbp_riu2_codes(gray255, threshold)
    sharp = (codes >= 6).astype(np.float32)
    return cv2.boxFilter(
        sharp, -1, (window, window), normalize=True, borderType=cv2.BORDER_REPLICATE
    )


def _neighbour_sum(m: np.ndarray) -> np.ndarray:
    """Sum of the 4-neighbours of each pixel (outside the image counts 0)."""
    kernel = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)
    return cv2.filter2D(m, -1, kernel, borderType=cv2.BORDER_CONSTANT)


def multiscale_mean_field(
    maps: list[np.ndarray], alpha: float, iters: int, damping: float = 0.5
) -> np.ndarray:
    """Sharp-label marginals of the three-layer Potts model of Yi & Eramian (Eq. 19).

    Parameters
    ----------
    maps : list of (H, W) arrays
        Per-scale refined sharpness, coarsest context first (the release orders s = 21, 15,
        11; the first layer's marginal is returned).
    alpha : float
        Potts penalty: pairwise potential ``exp(-alpha)`` for unequal labels.
    iters : int
        Mean-field sweeps (all nodes updated in parallel, damped).

    Returns
    -------
    ndarray, float32 (H, W)
        P(sharp) of the first layer.
    """
    x = np.stack(maps).astype(np.float32)
    std = float(x.std())
    x = (x - float(x.mean())) / (std if std > 1e-8 else 1.0)
    # log unary ratio sharp / blurred: -|1 - x| - (-|x|)
    unary = np.abs(x) - np.abs(1.0 - x)
    q = 1.0 / (1.0 + np.exp(-unary))
    n = len(maps)
    for _ in range(int(iters)):
        m = 2.0 * q - 1.0  # E[+1 if sharp, -1 if blurred]
        field = np.stack([_neighbour_sum(m[i]) for i in range(n)])
        field[1:] += m[:-1]
        field[:-1] += m[1:]
        # Potts: log psi = -alpha [s_i != s_j]  ->  logit contribution alpha * E[+-1] per edge
        q_new = 1.0 / (1.0 + np.exp(-(unary + alpha * field)))
        q = damping * q + (1.0 - damping) * q_new
    return q[0].astype(np.float32)


class LBPBlur(Method):
    """Yi & Eramian 2016 LBP sharpness with matting refinement and multiscale fusion.

    Parameters
    ----------
    t_lbp : float
        LBP contrast threshold on [0, 1] intensities (paper Sec. III, release demo.m: 0.016).
    scales : list of int
        Window sides s of the sharpness metric (paper Sec. IV, demo.m: 11, 15, 21).
    t_m1, t_m2 : float
        Double thresholds on the normalised sharpness for matting constraints (paper Eq. 21,
        localSharpScoreLBP.m: 0.3 sharp, 0.01 blurred).
    matting_lambda : float
        Data-term weight of the matting solve (Levin et al. 2008 solveAlpha: 100).
    matting_epsilon : float
        Regulariser of the matting Laplacian (Levin et al. 2008: 1e-7).
    matting : str
        ``c2f`` (release ``solveAlphaC2F``: pyramid, solve at the coarsest level, guided
        upsampling) or ``resize`` (solve at ``matting_scale``, bilinear upsampling).
    matting_levels : int
        Pyramid levels of ``c2f`` (localSharpScoreLBP.m: 3, only the coarsest solved).
    matting_scale : float
        Resolution of the ``resize`` solve (1/4 matches the release's coarsest level).
    mrf_alpha : float
        Potts weight of the multiscale inference (demo.m: 0.5).
    mf_iters : int
        Mean-field sweeps replacing the release's loopy BP (our choice: 10).
    refine : bool
        False skips matting and fusion and returns 1 - the mean normalised m_LBP over scales
        (an ablation of the raw metric).
    """

    name = "lbp"
    fidelity = {
        "implementation": "substitute",
        "differs": (
            "multiscale grid model solved by mean-field updates instead of the paper's inference"
        ),
    }
    citation = "Yi & Eramian, LBP-based segmentation of defocus blur, IEEE TIP 2016"
    #: the resize factor of the matting solve
    bounds = {"matting_scale": "(0, 1]"}
    defaults: ClassVar[dict[str, Any]] = {
        "t_lbp": 0.016,
        "scales": [11, 15, 21],
        "t_m1": 0.3,
        "t_m2": 0.01,
        "matting_lambda": 100.0,
        "matting_epsilon": 1e-7,
        "matting": "c2f",
        "matting_levels": 3,
        "matting_scale": 0.25,
        "mrf_alpha": 0.5,
        "mf_iters": 10,
        "refine": True,
    }

    def sharpness_maps(self, image: np.ndarray) -> list[np.ndarray]:
        """Min-max normalised m_LBP at each scale (high = sharp), in ``scales`` order."""
        image = check_image(image)
        t = check_positive("t_lbp", self.params["t_lbp"])
        scales = [check_odd_window("scales", s) for s in self.params["scales"]]
        if not scales:
            raise ValueError("scales must list at least one odd window size, got []")
        gray255 = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        return [minmax_normalise(lbp_sharpness(gray255, s, t * 255.0)) for s in scales]

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        maps = self.sharpness_maps(image)
        if not self.params["refine"]:
            return (1.0 - np.mean(maps, axis=0)).astype(np.float32)
        t1, t2 = float(self.params["t_m1"]), float(self.params["t_m2"])
        if not 0 <= t2 < t1 <= 1:
            raise ValueError(f"need 0 <= t_m2 < t_m1 <= 1, got t_m1={t1!r}, t_m2={t2!r}")
        rgb = image.astype(np.float64) / 255.0
        mode = self.params["matting"]
        if mode not in ("c2f", "resize"):
            raise ValueError(f"matting must be 'c2f' or 'resize', got {mode!r}")
        lam = check_positive("matting_lambda", self.params["matting_lambda"])
        eps = float(self.params["matting_epsilon"])
        refined = []
        for m in maps:
            sharp, blurred = m > t1, m < t2
            if mode == "c2f":
                from defocus.methods.classic.c2f_matting import solve_alpha_c2f

                # localSharpScoreLBP.m: the constrained image mI is white where sharp, black
                # where blurred; a pixel is constrained where mI differs from the image
                target = np.where(sharp[..., None], 1.0, np.where(blurred[..., None], 0.0, rgb))
                cmap = np.abs(rgb - target).sum(axis=2) > 0.001
                alpha = solve_alpha_c2f(
                    rgb,
                    cmap.astype(np.float64),
                    (sharp & cmap).astype(np.float64),
                    levels=int(self.params["matting_levels"]),
                    active_levels=1,
                    lam=lam,
                    epsilon=eps,
                )
            else:
                alpha = matting_propagation(
                    sharp.astype(np.float32),
                    (sharp | blurred).astype(np.float32),
                    rgb,
                    lam=lam,
                    epsilon=eps,
                    scale=float(self.params["matting_scale"]),
                    solver="direct",
                )
            refined.append(np.clip(alpha, 0.0, 1.0))
        # the release stacks the layers as [s=21, s=15, s=11] and reads the first
        order = np.argsort([-int(s) for s in self.params["scales"]], kind="stable")
        p_sharp = multiscale_mean_field(
            [refined[i] for i in order],
            alpha=float(self.params["mrf_alpha"]),
            iters=int(self.params["mf_iters"]),
        )
        return np.clip(1.0 - p_sharp, 0.0, 1.0).astype(np.float32)
