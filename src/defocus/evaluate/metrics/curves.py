"""Threshold sweeps: counts at every threshold and what is computed from them.

The float32 threshold table ``t_k = k/(n-1)`` (:func:`thresholds`), the threshold index of
every pixel (:func:`quantise`), per-image TP/FP/FN at every threshold (:class:`Counts`),
the dataset-level P, R and F curves of each averaging mode (:func:`summarise`) and their
max-F (:func:`f_beta`), the average precision of each image (:func:`average_precision`),
and counts at absolute thresholds of a physical map (:func:`threshold_counts`,
:func:`sigma_levels`).

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: beta^2 of the F-measure (Achanta et al. 2009), as in every DBD paper's F-measure
BETA2 = 0.3
AVERAGING = ("image", "image_maxf", "pooled")


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
