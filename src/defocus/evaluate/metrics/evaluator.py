"""The accumulator of the binary metrics (PySODMetrics style).

:class:`BinaryEvaluator` scores one image at a time (every threshold at once, the adaptive
and fixed thresholds, Eq. 13 accuracy, AP) and returns per-image rows, dataset-level curves
and scalars. The protocol it implements is described in :mod:`defocus.evaluate.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from defocus.evaluate.metrics.curves import (
    BETA2,
    Counts,
    _check_mode,
    _div,
    average_precision,
    f_beta,
    f_measure,
    quantise,
    summarise,
    thresholds,
)
from defocus.evaluate.metrics.maps import (
    EQ13_ALPHA,
    GT_BINARISE,
    binarise_gt,
    eq13_accuracy,
    is_constant,
)

#: the positive class: ``sharp`` scores ``1 - map`` against ``1 - GT``
POSITIVE = ("blurred", "sharp")


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
        in-focus map (see :mod:`defocus.evaluate.metrics`).
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
        # defocus.evaluate.metrics): m is already flipped when the positive class is sharp
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
