"""Binary blur-detection metrics as an accumulator (PySODMetrics style).

The declared default protocol (:data:`PROTOCOL_TEXT`, quoted in every table caption):

* the scored map is ``maps/{id}`` of the prediction file (float32 in [0, 1], 1 = blurred);
* the GT mask is binarised at 0.5 of its value range after polarity normalisation
  (1 = blurred);
* for thresholds ``t_k = k/255``, ``k = 0..255``, the binary prediction is ``map >= t_k``;
  per image ``P = TP/(TP+FP)`` and ``R = TP/(TP+FN)``, with 0/0 counted as 0;
* P and R are averaged over images and ``F_k = (1+beta2) P R / (beta2 P + R)`` (0 where
  both are 0), ``beta2 = 0.3`` (Achanta et al., CVPR 2009; the value used by DeFusionNet,
  Tang et al. CVPR 2019, and the SOD literature);
* ``f_beta`` = max_k F_k; ``f_beta_mean`` = mean_k F_k; ``f_beta_adaptive``: the mean over
  images of the per-image F of the positive class after the adaptive binarisation below;
  ``mae`` = mean over images of per-image mean ``|map - GT|``;
* a map that is constant over an image (max - min <= 1e-6) carries no evidence: every
  threshold labels all of its pixels alike. The per-image column ``no_evidence`` flags it.

Adaptive threshold
------------------
Achanta et al. (CVPR 2009, Sec. 4) binarise a saliency map S at ``T = 2 mean(S)``; the SOD
toolkits clip it at 1 (``min(2 mean(S), 1)``, PySODMetrics ``Fmeasure``). Their maps are
bright on a small foreground. DBD benchmarks reuse that code on maps whose bright class is
the in-focus object (DUT-DBD marks it white, Zhao et al. CVPR 2018; the BTBNet and
DeFusionNet comparisons score with the SOD measures). Applied to a blur map instead, whose
bright class (blurred) covers most of a CUHK image, ``2 mean(map)`` exceeds 1 and only
pixels at exactly 1 survive: F ~ 0 for any method. So the threshold here is always taken on
the saliency-style map, the in-focus map ``s = 1 - map``: a pixel is predicted in focus when
``s > t``, ``t = min(adaptive_factor * mean(s), 1)``, and blurred otherwise, i.e. blurred
when ``map >= 1 - t`` (ties go to the blurred class, as ``map >= t_k`` in the sweep, so a
constant map keeps its own label: the all-blurred map stays all blurred). That one
binarisation serves either positive class: with ``positive = sharp`` it is Achanta's rule
on the positive class's own map, with ``positive = blurred`` the blurred class is its
complement. ``threshold_adaptive`` in the per-image CSV is ``t`` on the in-focus map.

Named options: averaging ``image`` (default, as above), ``image_maxf`` (mean of per-image
max-F), ``pooled`` (TP/FP/FN pooled over the dataset); positive class ``blurred``
(default) or ``sharp`` (then ``map -> 1 - map`` and ``GT -> 1 - GT``); the number of
thresholds (256 by default; ``n`` gives ``t_k = k/(n-1)``); fixed-threshold pixel accuracy
and IoU (threshold 0.5 by default).

Thresholds and quantisation
---------------------------
Maps are compared in float32, their storage dtype: ``t_k`` is ``np.float32(k/(n-1))`` and
the binary prediction is ``map_f32 >= t_k`` exactly. This matters at the edges: a map
value written as ``np.float32(k/255)`` (e.g. a uint8 PNG divided by 255) lies *on* the
threshold and counts as positive at ``t_k`` (in float64 it may lie just below ``k/255``).
To sweep all thresholds without a loop, each pixel gets the index
``q = max{k : map >= t_k}`` (:func:`quantise`), computed by ``floor(map*(n-1))`` and a
one-step correction against the float32 threshold table, so ``q >= k`` if and only if
``map >= t_k``. Then ``TP_k`` is the reverse cumulative sum of the histogram of ``q`` over
GT-positive pixels (``uint8`` when ``n <= 256``), ``FP_k`` the same over GT-negative pixels.
For ``n = 256`` the rounding is benign: ``k/255`` has an 8-bit periodic binary expansion,
float32 keeps 24 = 3 x 8 significant bits, so ``np.float32(k/255)`` always rounds *up* and
``floor(map*255)`` alone is already right; for other ``n`` it is not (``n = 21``:
``np.float32(7/20) < 7/20``, and the correction gives ``q = 7`` where the floor gives 6).
Edge cases: ``map = 0`` is positive only at ``t_0 = 0``; ``map = 1`` is positive at every
threshold including ``t = 1``. Curves run from low to high threshold (PySODMetrics runs
them high to low).

References
----------
Achanta, Hemami, Estrada, Suesstrunk, "Frequency-tuned salient region detection",
CVPR 2009 (beta2 = 0.3, adaptive threshold 2 x mean saliency).
Zhao, Zhao, Wang, Lu, "Defocus blur detection via multi-stream bottom-top-bottom fully
convolutional network", CVPR 2018 (DUT-DBD, in-focus = white; SOD measures).
Tang, Zhu, Liu, Wang, "DeFusionNET: Defocus blur detection via recurrently fusing and
refining multi-scale deep features", CVPR 2019 (F-measure and MAE on CUHK and DUT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_AVERAGING_TEXT = {
    "image": "P and R averaged over images; F_k = (1+beta2)PR/(beta2 P + R); F_beta = max_k F_k",
    "image_maxf": "F_beta = mean over images of per-image max_k F_k, "
    "F_k = (1+beta2)PR/(beta2 P + R)",
    "pooled": "TP, FP, FN pooled over all images; F_k = (1+beta2)PR/(beta2 P + R); "
    "F_beta = max_k F_k",
}


def describe_protocol(
    beta2: float = 0.3,
    n_thresholds: int = 256,
    averaging: str = "image",
    positive: str = "blurred",
    fixed_threshold: float = 0.5,
    adaptive_factor: float = 2.0,
    n_bootstrap: int = 1000,
    ci_level: float = 0.95,
    preset: str = "declared",
    normalise: str = "none",
    resize: str = "none",
    gt_binarise: str = "half",
    eq13_alpha: float = 0.3,
    sigma_levels: list | tuple | None = None,
    split: dict | None = None,
    metric: str = "f_beta",
    **_ignored: object,
) -> str:
    """One-paragraph description of a protocol for captions (extra keys are ignored, so a
    whole protocol dict can be passed as ``**protocol``).

    The keys of a named preset (:mod:`defocus.evaluate.protocols`) that differ from the
    declared protocol add a sentence each.
    """
    if averaging not in _AVERAGING_TEXT:
        raise ValueError(f"unknown averaging mode {averaging!r}; expected one of {AVERAGING}")
    n = int(n_thresholds)
    flip = "" if positive == "blurred" else " Positive class = sharp: map -> 1-map, GT -> 1-GT."
    head = "" if preset == "declared" else f"Protocol preset {preset} (headline metric {metric}). "
    gt_rule = "binarised at 0.5" if gt_binarise == "half" else "binarised at > 0 (any non-zero)"
    extra = ""
    if normalise == "mat2gray":
        extra += " Each map is min-max stretched per image (MATLAB mat2gray) before scoring."
    if resize != "none":
        extra += f" A map of another size than its GT is resized to it ({resize})."
    if split:
        extra += " Images: " + ", ".join(f"{d}: split {s}" for d, s in sorted(split.items()))
        extra += " (other datasets: the manifest's test split)."
    eq13 = (
        f" Eq. 13 accuracy (Park et al. 2017): blurred where map >= {eq13_alpha:g} max + "
        f"{1 - eq13_alpha:g} min, per-image pixel accuracy averaged over images; mAP: mean over "
        "images of the average precision of the positive class."
    )
    if sigma_levels:
        lo, hi, k = sigma_levels
        eq13 += (
            f" Physical sigma maps: PR over {int(k)} absolute thresholds sigma = {lo:g}..{hi:g} px"
            " (raw >= sigma is blurred), F_sigma = max F."
        )
    return (
        f"{head}Protocol: scored map = maps/{{id}} (float32 in [0,1], 1 = blurred); GT {gt_rule} "
        f"(1 = blurred).{flip}{extra} For t_k = k/{n - 1}, k = 0..{n - 1}, "
        "prediction = map >= t_k; "
        "per image P = TP/(TP+FP), R = TP/(TP+FN) (0/0 = 0); "
        f"{_AVERAGING_TEXT[averaging]}; beta2 = {beta2:g}; F_mean = mean_k F_k; "
        "F_adaptive: per image, pixels with 1-map > "
        f"min({adaptive_factor:g} mean(1-map), 1) are in focus, the rest blurred (Achanta et "
        "al. 2009 on the in-focus map), F of the positive class averaged over images; "
        "MAE = mean over images of mean |map - GT|; accuracy and IoU at "
        f"threshold {fixed_threshold:g}.{eq13} {100 * ci_level:g}% CIs: percentile bootstrap "
        f"over images ({n_bootstrap} resamples)."
    )


#: the default protocol in words, quoted in table captions and the tables' README
PROTOCOL_TEXT = describe_protocol()

#: beta^2 of the F-measure (Achanta et al. 2009), as in every DBD paper's F-measure
BETA2 = 0.3
AVERAGING = ("image", "image_maxf", "pooled")
POSITIVE = ("blurred", "sharp")


def thresholds(n_thresholds: int = 256) -> np.ndarray:
    """The float32 threshold table ``t_k = k/(n-1)``, ``k = 0..n-1`` (ascending)."""
    if int(n_thresholds) != n_thresholds or n_thresholds < 2:
        raise ValueError(f"n_thresholds must be an integer >= 2, got {n_thresholds!r}")
    n = int(n_thresholds)
    return (np.arange(n, dtype=np.float64) / (n - 1)).astype(np.float32)


def quantise(pred_map: np.ndarray, n_thresholds: int = 256) -> np.ndarray:
    """Threshold index ``q = max{k : map >= t_k}`` of every pixel.

    ``q >= k`` holds exactly when ``np.float32(map) >= thresholds(n)[k]``, so one histogram
    of ``q`` answers all thresholds. The returned dtype is ``uint8`` for ``n <= 256``.

    Parameters
    ----------
    pred_map : ndarray
        Map in [0, 1]; converted to float32 (the prediction files' dtype).
    n_thresholds : int
        Number of thresholds ``n``.
    """
    t = thresholds(n_thresholds)
    n = t.size
    m = np.asarray(pred_map, dtype=np.float32)
    # floor of the exact product (float32 * (n-1) is exact in float64 for n <= 2**29) is
    # within one of the answer; correct it against the float32 table, where rounding of
    # k/(n-1) to float32 may move a threshold onto or past a map value
    q = np.clip(np.floor(m.astype(np.float64) * (n - 1)), 0, n - 1).astype(np.int64)
    q += (q < n - 1) & (m >= t[np.minimum(q + 1, n - 1)])
    q -= (q > 0) & (m < t[q])
    return q.astype(np.uint8) if n <= 256 else q


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num/den`` elementwise as float64, with 0/0 (and x/0) counted as 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def f_measure(precision: np.ndarray, recall: np.ndarray, beta2: float = BETA2) -> np.ndarray:
    """``(1+beta2) P R / (beta2 P + R)``, 0 where P and R are both 0."""
    p = np.asarray(precision, dtype=np.float64)
    r = np.asarray(recall, dtype=np.float64)
    return _div((1.0 + beta2) * p * r, beta2 * p + r)


@dataclass
class Counts:
    """Per-image confusion counts at every threshold.

    Attributes
    ----------
    tp, fp, fn : ndarray of int64, shape (n_images, n_thresholds)
        Counts of ``map >= t_k`` against the binary GT, threshold ``k`` on the last axis.
    thresholds : ndarray of float32, shape (n_thresholds,)
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    thresholds: np.ndarray

    def __post_init__(self) -> None:
        shapes = {a.shape for a in (self.tp, self.fp, self.fn)}
        if len(shapes) != 1 or self.tp.ndim != 2 or self.tp.shape[1] != self.thresholds.size:
            raise ValueError(
                f"tp, fp, fn must share shape (n_images, n_thresholds={self.thresholds.size}); "
                f"got {self.tp.shape}, {self.fp.shape}, {self.fn.shape}"
            )

    @property
    def n_images(self) -> int:
        return int(self.tp.shape[0])

    def per_image(self, beta2: float = BETA2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-image P, R, F curves, each (n_images, n_thresholds) float64."""
        p = _div(self.tp, self.tp + self.fp)
        r = _div(self.tp, self.tp + self.fn)
        return p, r, f_measure(p, r, beta2)


def summarise(
    counts: Counts, mode: str = "image", beta2: float = BETA2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dataset-level precision, recall and F curves (one value per threshold) for ``mode``.

    Parameters
    ----------
    counts : Counts
        Per-image counts from :meth:`BinaryEvaluator.counts`.
    mode : {"image", "image_maxf", "pooled"}
        ``image``: P and R averaged over images, F from the averaged P and R.
        ``image_maxf``: P and R averaged over images, F = mean of the per-image F curves
        (its scalar score is the mean of per-image maxima, see :func:`f_beta`).
        ``pooled``: TP, FP, FN summed over images, then P, R, F.
    beta2 : float
        beta^2 of the F-measure.
    """
    _check_mode(mode)
    if counts.n_images == 0:
        raise ValueError("no images were evaluated (counts have 0 rows)")
    if mode == "pooled":
        tp, fp, fn = (a.sum(axis=0) for a in (counts.tp, counts.fp, counts.fn))
        p, r = _div(tp, tp + fp), _div(tp, tp + fn)
        return p, r, f_measure(p, r, beta2)
    p_i, r_i, f_i = counts.per_image(beta2)
    p, r = p_i.mean(axis=0), r_i.mean(axis=0)
    f = f_i.mean(axis=0) if mode == "image_maxf" else f_measure(p, r, beta2)
    return p, r, f


def f_beta(counts: Counts, mode: str = "image", beta2: float = BETA2) -> float:
    """The scalar max-F of ``mode``: max of the F curve, or for ``image_maxf`` the mean of
    the per-image maxima."""
    _check_mode(mode)
    if mode == "image_maxf":
        return float(counts.per_image(beta2)[2].max(axis=1).mean())
    return float(summarise(counts, mode, beta2)[2].max())


def _check_mode(mode: str) -> None:
    if mode not in AVERAGING:
        raise ValueError(f"unknown averaging mode {mode!r}; expected one of {AVERAGING}")


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


def average_precision(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Average precision of each image from its counts at ascending thresholds.

    ``AP = sum_k (R_k - R_{k+1}) P_k`` with ``R_n = 0`` (the step-wise area under the PR
    curve, scikit-learn's ``average_precision_score`` on the quantised map). NaN for an
    image without positive GT pixels (no recall is defined). DMENet's "mAP" on CUHK (Lee et
    al. CVPR 2019, supplementary Table 5, ``acc / mAP``) is taken to be the mean over images
    of this AP with the blurred class positive: the paper names the measure but its
    evaluation code for CUHK is not released (codeslake/DMENet ``evaluation/`` holds RTF
    only), so this definition is inferred.

    Parameters
    ----------
    tp, fp, fn : ndarray, shape (n_images, n_thresholds) or (n_thresholds,)
    """
    tp, fp, fn = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (tp, fp, fn))
    p = _div(tp, tp + fp)
    pos = tp + fn
    r = _div(tp, pos)
    r_next = np.concatenate([r[:, 1:], np.zeros((r.shape[0], 1))], axis=1)
    ap = ((r - r_next) * p).sum(axis=1)
    ap[pos[:, 0] == 0] = np.nan
    return ap


def threshold_counts(
    values: np.ndarray, gt: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN of ``values >= level`` against boolean ``gt`` for each of ``levels``.

    Used for PR curves over absolute thresholds of a physical map (DHDE Sec. 6: "adjusting
    tau from sigma_1 to sigma_L" on the sigma map, :func:`sigma_levels`).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    g = np.asarray(gt, dtype=bool).ravel()
    if v.size != g.size:
        raise ValueError(f"map of {v.size} pixels and GT of {g.size} pixels differ")
    lv = np.asarray(levels, dtype=np.float64)
    pos_sorted = np.sort(v[g])
    neg_sorted = np.sort(v[~g])
    tp = pos_sorted.size - np.searchsorted(pos_sorted, lv, side="left")
    fp = neg_sorted.size - np.searchsorted(neg_sorted, lv, side="left")
    fn = pos_sorted.size - tp
    return tp.astype(np.int64), fp.astype(np.int64), fn.astype(np.int64)


def sigma_levels(low: float, high: float, n: int) -> np.ndarray:
    """``n`` absolute sigma thresholds from ``low`` to ``high`` px (``np.linspace``).

    DHDE's classifier has L = 11 labels, sigma 0.5 to 2.0 px in steps of 0.15 (Park et al.
    Sec. 5.1), and its PR curve moves tau "from sigma_1 to sigma_L" (Sec. 6): ``(0.5, 2.0,
    11)``.
    """
    if int(n) != n or n < 2 or not high > low:
        raise ValueError(f"sigma levels need n >= 2 and high > low, got ({low}, {high}, {n})")
    return np.linspace(float(low), float(high), int(n))


class BinaryEvaluator:
    """Accumulate binary blur-detection metrics image by image.

    Parameters
    ----------
    beta2 : float
        beta^2 of the F-measure (0.3, Achanta et al. 2009). Named ``beta2`` because it is
        beta squared.
    n_thresholds : int
        Number of thresholds ``t_k = k/(n-1)`` (256 by default, i.e. ``k/255``).
    positive : {"blurred", "sharp"}
        The positive class. ``sharp`` evaluates ``1 - map`` against ``1 - GT``.
    fixed_threshold : float
        Threshold of the fixed-threshold metrics (accuracy, IoU, precision, recall).
    adaptive_factor : float
        Per-image adaptive threshold ``min(adaptive_factor * mean(1 - map), 1)`` on the
        in-focus map (see the module docstring).
    averaging : {"image", "image_maxf", "pooled"}
        How :meth:`results` aggregates the curves.
    gt_binarise : {"half", "nonzero"}
        GT binarisation rule (:func:`binarise_gt`).
    eq13_alpha : float
        alpha of Eq. 13 for the per-image ``accuracy_eq13`` (:func:`eq13_accuracy`).

    Examples
    --------
    >>> ev = BinaryEvaluator()
    >>> ev.step("a", np.array([[0.9, 0.1]], np.float32), np.array([[True, False]]))
    >>> per_image, curves = ev.results()
    """

    def __init__(
        self,
        beta2: float = BETA2,
        n_thresholds: int = 256,
        positive: str = "blurred",
        fixed_threshold: float = 0.5,
        adaptive_factor: float = 2.0,
        averaging: str = "image",
        gt_binarise: str = "half",
        eq13_alpha: float = EQ13_ALPHA,
    ) -> None:
        if positive not in POSITIVE:
            raise ValueError(f"positive must be one of {POSITIVE}, got {positive!r}")
        if not beta2 > 0:
            raise ValueError(f"beta2 must be > 0, got {beta2!r}")
        if not 0 <= fixed_threshold <= 1:
            raise ValueError(f"fixed_threshold must be in [0, 1], got {fixed_threshold!r}")
        _check_mode(averaging)
        self.beta2 = float(beta2)
        self.thresholds = thresholds(n_thresholds)
        self.n_thresholds = self.thresholds.size
        self.positive = positive
        self.fixed_threshold = float(fixed_threshold)
        self.adaptive_factor = float(adaptive_factor)
        self.averaging = averaging
        if gt_binarise not in GT_BINARISE:
            raise ValueError(f"gt_binarise must be one of {GT_BINARISE}, got {gt_binarise!r}")
        self.gt_binarise = gt_binarise
        if not 0 <= eq13_alpha <= 1:
            raise ValueError(f"eq13_alpha must be in [0, 1], got {eq13_alpha!r}")
        self.eq13_alpha = float(eq13_alpha)
        self._ids: list[str] = []
        self._tp: list[np.ndarray] = []
        self._fp: list[np.ndarray] = []
        self._fn: list[np.ndarray] = []
        self._rows: list[dict] = []

    def step(self, image_id: str, pred_map: np.ndarray, gt_mask: np.ndarray) -> None:
        """Add one image.

        Parameters
        ----------
        image_id : str
            Identifier (unique within one evaluation).
        pred_map : ndarray, (H, W) float
            Blur map in [0, 1], 1 = blurred; evaluated in float32.
        gt_mask : ndarray, (H, W)
            GT with 1 = blurred: bool, uint8/uint16 (255/65535 = blurred) or float in
            [0, 1]; binarised at 0.5 (see :func:`binarise_gt`).
        """
        image_id = str(image_id)
        if image_id in self._ids:
            raise ValueError(f"image id {image_id!r} was already evaluated")
        pred = np.asarray(pred_map)
        gt_arr = np.asarray(gt_mask)
        if pred.ndim != 2 or gt_arr.shape != pred.shape:
            raise ValueError(
                f"{image_id}: prediction shape {pred.shape} and GT shape {gt_arr.shape} must be "
                "the same (H, W)"
            )
        if pred.size == 0:
            raise ValueError(f"{image_id}: empty prediction of shape {pred.shape}")
        if not np.issubdtype(pred.dtype, np.floating):
            raise ValueError(
                f"{image_id}: prediction must be a float map in [0, 1], got dtype {pred.dtype}"
            )
        m = pred.astype(np.float32)
        if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise ValueError(
                f"{image_id}: prediction must be finite and in [0, 1], "
                f"got range [{np.nanmin(m):.6g}, {np.nanmax(m):.6g}]"
            )
        gt_blurred = binarise_gt(gt_arr, self.gt_binarise)
        accuracy_eq13 = eq13_accuracy(m, gt_blurred, self.eq13_alpha)
        if self.positive == "sharp":
            m = (np.float32(1.0) - m).astype(np.float32)
            gt = ~gt_blurred
        else:
            gt = gt_blurred

        # all thresholds at once: histogram of the threshold index, reversed cumsum
        q = quantise(m, self.n_thresholds)
        n = self.n_thresholds
        pos_hist = np.bincount(q[gt], minlength=n).astype(np.int64)
        neg_hist = np.bincount(q[~gt], minlength=n).astype(np.int64)
        tp = np.cumsum(pos_hist[::-1])[::-1]  # tp[k] = #{gt & q >= k}
        fp = np.cumsum(neg_hist[::-1])[::-1]
        n_pos = int(gt.sum())
        fn = n_pos - tp
        self._ids.append(image_id)
        self._tp.append(tp)
        self._fp.append(fp)
        self._fn.append(fn)

        p_curve = _div(tp, tp + fp)
        r_curve = _div(tp, tp + fn)
        f_curve = f_measure(p_curve, r_curve, self.beta2)

        # adaptive binarisation (Achanta et al. 2009) on the in-focus map, in float64 (see
        # the module docstring): m is already flipped when the positive class is sharp
        m64 = m.astype(np.float64)
        in_focus = 1.0 - m64 if self.positive == "blurred" else m64
        t_adapt = min(self.adaptive_factor * float(in_focus.mean()), 1.0)
        pred_in_focus = in_focus > t_adapt
        p_a, r_a = self._pr(~pred_in_focus if self.positive == "blurred" else pred_in_focus, gt)
        # fixed threshold, compared in float32 like the sweep
        b = m >= np.float32(self.fixed_threshold)
        tp_f = int(np.count_nonzero(b & gt))
        fp_f = int(np.count_nonzero(b & ~gt))
        fn_f = n_pos - tp_f
        tn_f = m.size - tp_f - fp_f - fn_f
        self._rows.append(
            {
                "id": image_id,
                "height": m.shape[0],
                "width": m.shape[1],
                "mae": float(np.abs(m.astype(np.float64) - gt).mean()),
                "f_max": float(f_curve.max()),
                "threshold_f_max": float(self.thresholds[int(np.argmax(f_curve))]),
                "f_adaptive": float(f_measure(p_a, r_a, self.beta2)),
                "threshold_adaptive": t_adapt,
                "accuracy": (tp_f + tn_f) / m.size,
                "iou": float(_div(tp_f, tp_f + fp_f + fn_f)),
                "accuracy_eq13": accuracy_eq13,
                "ap": float(average_precision(tp, fp, fn)[0]),
                "precision": float(_div(tp_f, tp_f + fp_f)),
                "recall": float(_div(tp_f, tp_f + fn_f)),
                "tp": tp_f,
                "fp": fp_f,
                "fn": fn_f,
                "tn": tn_f,
                "fraction_blurred_gt": float(gt_blurred.mean()),
                "no_evidence": is_constant(m),
            }
        )

    @staticmethod
    def _pr(b: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
        tp = np.count_nonzero(b & gt)
        return float(_div(tp, np.count_nonzero(b))), float(_div(tp, np.count_nonzero(gt)))

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def counts(self) -> Counts:
        """Per-image TP/FP/FN at every threshold (int64 arrays, n_images x n_thresholds)."""
        arrays = [
            np.stack(xs).astype(np.int64) if xs else np.zeros((0, self.n_thresholds), np.int64)
            for xs in (self._tp, self._fp, self._fn)
        ]
        return Counts(*arrays, thresholds=self.thresholds.copy())

    def results(self) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """Per-image metrics and dataset-level curves.

        Returns
        -------
        per_image : DataFrame
            One row per image: ``id, height, width, mae, f_max, threshold_f_max,
            f_adaptive, threshold_adaptive, accuracy, iou, accuracy_eq13, ap, precision,
            recall, tp, fp, fn, tn, fraction_blurred_gt, no_evidence``; ``accuracy_eq13`` is
            the accuracy of Eq. 13's binarisation (:func:`eq13_accuracy`, blurred
            orientation whatever the positive class), ``ap`` the image's average precision
            of the positive class (:func:`average_precision`, NaN without positive pixels);
            ``precision``/``recall``/``accuracy``/``iou`` and the counts are at
            ``fixed_threshold``; ``fraction_blurred_gt`` is the fraction of GT-blurred
            pixels whatever the positive class; ``no_evidence`` is True for a constant map
            (:func:`is_constant`); ``threshold_adaptive`` is the threshold on the in-focus
            map.
        curves : dict of ndarray
            ``thresholds``, ``precision``, ``recall``, ``f`` (dataset level, under
            ``averaging``), and the per-image counts ``tp``, ``fp``, ``fn``
            (n_images x n_thresholds int64) with ``ids``, from which any averaging mode or
            bootstrap can be recomputed.
        """
        if not self._ids:
            raise ValueError("no images were evaluated; call step() first")
        c = self.counts()
        p, r, f = summarise(c, self.averaging, self.beta2)
        curves = {
            "thresholds": c.thresholds,
            "precision": p,
            "recall": r,
            "f": f,
            "tp": c.tp,
            "fp": c.fp,
            "fn": c.fn,
            "ids": np.array(self._ids, dtype=str),
        }
        return pd.DataFrame(self._rows), curves

    def summary(self) -> dict[str, float]:
        """Dataset-level scalars under ``averaging``: f_beta, f_beta_mean, f_beta_adaptive,
        mae, accuracy, iou (the last two pooled in ``pooled`` mode, else image means),
        accuracy_eq13 (image mean) and map (mean AP over images with positive pixels)."""
        per_image, curves = self.results()
        c = self.counts()
        out = {
            "n_images": len(self),
            "f_beta": f_beta(c, self.averaging, self.beta2),
            "f_beta_mean": float(np.mean(curves["f"])),
            "f_beta_adaptive": float(per_image["f_adaptive"].mean()),
            "mae": float(per_image["mae"].mean()),
        }
        if self.averaging == "pooled":
            s = per_image[["tp", "fp", "fn", "tn"]].sum()
            out["accuracy"] = float((s.tp + s.tn) / s.sum())
            out["iou"] = float(_div(s.tp, s.tp + s.fp + s.fn))
        else:
            out["accuracy"] = float(per_image["accuracy"].mean())
            out["iou"] = float(per_image["iou"].mean())
        out["accuracy_eq13"] = float(per_image["accuracy_eq13"].mean())
        ap = per_image["ap"].to_numpy(dtype=np.float64)
        out["map"] = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
        return out
