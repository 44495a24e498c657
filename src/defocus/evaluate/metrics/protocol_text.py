"""A protocol in words, for table captions (:func:`describe_protocol`), and the declared
protocol's text (:data:`PROTOCOL_TEXT`)."""

from __future__ import annotations

from defocus.evaluate.metrics.curves import AVERAGING

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
