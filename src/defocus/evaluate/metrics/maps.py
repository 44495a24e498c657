"""Rules on one map or one GT mask, before or instead of the threshold sweep.

The GT binarisation of every protocol (:func:`binarise_gt`), the no-evidence test of a
constant map (:func:`is_constant`), HiFST's per-image min-max stretch (:func:`mat2gray`)
and Park et al.'s Eq. 13 binarisation with its pixel accuracy (:func:`eq13_threshold`,
:func:`eq13_accuracy`).
"""

from __future__ import annotations

import numpy as np

#: a map whose value range is at most this is constant: it carries no evidence
CONSTANT_TOL = 1e-6


def is_constant(pred_map: np.ndarray) -> bool:
    """Whether a map is constant (max - min <= :data:`CONSTANT_TOL`): no evidence at all."""
    m = np.asarray(pred_map)
    return bool(m.size and float(m.max()) - float(m.min()) <= CONSTANT_TOL)


#: GT binarisation rules: ``half`` (value >= half of the dtype's range, the declared
#: protocol) and ``nonzero`` (any value above 0, as HiFST's ``PRDataComputation.m`` does:
#: ``GT_Img(GT_Img>0.5)=1`` on a uint8 mask marks every non-zero pixel)
GT_BINARISE = ("half", "nonzero")


def binarise_gt(gt_mask: np.ndarray, rule: str = "half") -> np.ndarray:
    """GT as bool (True = blurred): ``value / max_of_range >= 0.5`` (``rule="half"``) or
    ``value > 0`` (``rule="nonzero"``, :data:`GT_BINARISE`).

    ``bool`` is taken as is; ``uint8`` is divided by 255 and ``uint16`` by 65535 (PNG
    masks, 255 = blurred); floats must lie in [0, 1]. Other dtypes raise ``ValueError``.
    """
    if rule not in GT_BINARISE:
        raise ValueError(f"GT binarisation rule {rule!r} unknown; expected one of {GT_BINARISE}")
    g = np.asarray(gt_mask)
    if g.dtype == bool:
        return g
    if g.dtype == np.uint8:
        return g > 0 if rule == "nonzero" else g >= 128  # 128/255 >= 0.5 > 127/255
    if g.dtype == np.uint16:
        return g > 0 if rule == "nonzero" else g >= 32768
    if np.issubdtype(g.dtype, np.floating):
        if g.size and (not np.all(np.isfinite(g)) or g.min() < 0 or g.max() > 1):
            raise ValueError(
                f"float GT must be finite and in [0, 1], got range [{np.nanmin(g)}, {np.nanmax(g)}]"
            )
        return g > 0 if rule == "nonzero" else g >= 0.5
    raise ValueError(
        f"GT dtype {g.dtype} not understood; pass bool, uint8 (255 = blurred), uint16 or "
        "float in [0, 1]"
    )


def mat2gray(pred_map: np.ndarray) -> np.ndarray:
    """Per-image min-max stretch to [0, 1] (MATLAB ``mat2gray(A)`` with its default limits
    ``[min(A(:)) max(A(:))]``), as float32.

    HiFST's ``Evaluation/PRDataComputation.m`` (isalirezag/HiFST) stretches every map this
    way before thresholding it at 0..255. A constant map has nothing to stretch and is
    returned unchanged (the ``mat2gray`` code path for equal limits keeps the input), so it
    stays a map without evidence.
    """
    m = np.asarray(pred_map, dtype=np.float64)
    lo, hi = float(m.min()), float(m.max())
    if hi == lo:
        return m.astype(np.float32)
    return ((m - lo) / (hi - lo)).astype(np.float32)


#: alpha of Park et al.'s Eq. 13 (DHDE, CVPR 2017, Sec. 6: "We set alpha = 0.3")
EQ13_ALPHA = 0.3


def eq13_threshold(pred_map: np.ndarray, alpha: float = EQ13_ALPHA) -> float:
    """Park et al.'s Eq. 13: ``tau = alpha v_max + (1 - alpha) v_min`` of one map.

    ``v_max`` and ``v_min`` are the map's maximum and minimum (DHDE, CVPR 2017, Sec. 6,
    ``../shared/papers/park2017_dhde_paper.txt``); ``alpha = 0.3`` in the paper. The rule is
    invariant to a per-image affine rescaling, so it gives the same binary map on a sigma
    map and on its min-max normalised blur map.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"Eq. 13 alpha must be in [0, 1], got {alpha!r}")
    m = np.asarray(pred_map, dtype=np.float64)
    return float(alpha * m.max() + (1.0 - alpha) * m.min())


def eq13_accuracy(pred_map: np.ndarray, gt_blurred: np.ndarray, alpha: float = EQ13_ALPHA) -> float:
    """Segmentation accuracy of one image under Eq. 13 (DHDE Sec. 6): the map is blurred
    where ``map >= tau`` (:func:`eq13_threshold`; ties go to the blurred class, as in the
    threshold sweep), and the accuracy is "the ratio of the number of pixels correctly
    classified to the total number of pixels"."""
    m = np.asarray(pred_map, dtype=np.float64)
    g = np.asarray(gt_blurred, dtype=bool)
    if m.shape != g.shape:
        raise ValueError(f"map shape {m.shape} and GT shape {g.shape} differ")
    pred = m >= eq13_threshold(m, alpha)
    return float(np.count_nonzero(pred == g)) / m.size
