"""Errors of continuous defocus maps (RTF, SYNDOF): MSE and MAE against a GT map.

The maps are in physical units (Gaussian sigma or CoC in pixels). For the RTF benchmark
(D'Andres et al., "Non-parametric blur map regression for depth of field extension",
TIP 2016) DMENet (Lee et al., CVPR 2019) clips sigma to ``[0, 3.275]`` and divides by
3.275 before computing MSE/MAE, for prediction and GT alike (codeslake/DMENet, folder
``evaluation/RTF``); :data:`RTF_SIGMA_MAX` and :func:`rtf_normalise` implement that step.

DMENet's own SYNDOF test set is scored in another unit: the network's raw output (CoC / 15,
before it is decoded to sigma and clamped) against the grey GT / 255 (codeslake/DMENet
``main.py`` ``evaluate``, lines 515-520 and 543). Prediction files keep that output as
``net/{id}`` (:mod:`defocus.io.predictions`) and the release's SYNDOF manifests keep the
GT as ``coc`` (CoC px, :mod:`defocus.datasets.dmenet_release`);
:func:`release_syndof_errors` scores them as the release does.
"""

from __future__ import annotations

import numpy as np

#: largest sigma (px) of the RTF benchmark; DMENet's RTF evaluation clips to [0, 3.275]
#: and divides by it (codeslake/DMENet, evaluation/RTF)
RTF_SIGMA_MAX = 3.275
#: keyword arguments of :func:`continuous_errors` for the RTF protocol
RTF_PROTOCOL = {"clip": (0.0, RTF_SIGMA_MAX), "scale": RTF_SIGMA_MAX}


def rtf_normalise(sigma: np.ndarray) -> np.ndarray:
    """``clip(sigma, 0, 3.275) / 3.275`` as float64 (DMENet's RTF evaluation)."""
    return np.clip(np.asarray(sigma, dtype=np.float64), 0.0, RTF_SIGMA_MAX) / RTF_SIGMA_MAX


def crop_to_common(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre-crop two 2-D maps to their common size ``(min H, min W)``.

    Used when a method returns a map a few pixels smaller or larger than the GT (e.g. a
    network that needs sizes divisible by 2^k). The centred alignment is this project's
    choice, not taken from a paper's code.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"expected two 2-D maps, got shapes {a.shape} and {b.shape}")
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])

    def centre(x: np.ndarray) -> np.ndarray:
        y0, x0 = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
        return x[y0 : y0 + h, x0 : x0 + w]

    return centre(a), centre(b)


def continuous_errors(
    pred: np.ndarray,
    gt: np.ndarray,
    clip: float | tuple[float, float] | None = None,
    scale: float | None = None,
    crop: bool = False,
) -> dict[str, float]:
    """MSE and MAE between a predicted and a GT continuous map.

    Parameters
    ----------
    pred, gt : ndarray, (H, W)
        Maps in the same physical unit (e.g. sigma in pixels).
    clip : float or (float, float), optional
        Clip both maps to ``[lo, hi]`` first (a single number means ``[0, clip]``).
    scale : float, optional
        Then divide both maps by ``scale``. The RTF protocol is ``clip=(0, 3.275),
        scale=3.275`` (:data:`RTF_PROTOCOL`).
    crop : bool
        Centre-crop both maps to their common size instead of requiring equal shapes.

    Returns
    -------
    dict
        ``{"mse": ..., "mae": ...}`` over all pixels, NaN pixels of the GT excluded.
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.ndim != 2 or g.ndim != 2:
        raise ValueError(f"expected 2-D maps, got prediction {p.shape} and GT {g.shape}")
    if p.shape != g.shape:
        if not crop:
            raise ValueError(
                f"prediction shape {p.shape} and GT shape {g.shape} differ; pass crop=True to "
                "centre-crop both to the common size"
            )
        p, g = crop_to_common(p, g)
    if clip is not None:
        lo, hi = (0.0, float(clip)) if np.isscalar(clip) else map(float, clip)
        p, g = np.clip(p, lo, hi), np.clip(g, lo, hi)
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        p, g = p / scale, g / scale
    valid = np.isfinite(g)
    if not np.all(np.isfinite(p[valid])):
        raise ValueError("prediction has non-finite values where the GT is defined")
    if not valid.any():
        raise ValueError("GT map has no finite pixel")
    d = p[valid] - g[valid]
    return {"mse": float(np.mean(d * d)), "mae": float(np.mean(np.abs(d)))}


#: the release crops images and GT to multiples of 16 before scoring (utils.refine_image)
RELEASE_STRIDE = 16


def net_unit_max_coc(unit: str) -> float | None:
    """``max_coc`` of a ``net/{id}`` unit ``"coc/<max_coc>"`` (DMENet with ``target="coc"``:
    ``"coc/15"``), else None (a unit these errors do not apply to)."""
    head, _, tail = str(unit).partition("/")
    if head != "coc" or not tail:
        return None
    try:
        value = float(tail)
    except ValueError:
        return None
    return value if value > 0 else None


def release_syndof_errors(net: np.ndarray, coc: np.ndarray, max_coc: float = 15.0) -> dict:
    """MSE and MAE of one image as DMENet's release scores its SYNDOF test set.

    Read from codeslake/DMENet @ d844e5a6ad3e7a1c9157d50935de1a6eb6bc4bf8, ``main.py``
    ``evaluate()``, the only released SYNDOF scoring (``evaluation/readme.md`` line 2 says
    its figures, SYNDOF 0.013 / 0.084 at line 17, were "measured in matlab", a script that is
    not released; the formula below is the Python one):

    * GT: the test/SYNDOF grey PNG / 255 (lines 449-451; ``utils.py`` line 31: ``imread(...,
      mode='P') / 255.``), which is ``CoC / 15``: here ``coc / max_coc`` from the
      manifest's ``coc`` column (CoC px written as ``15 * gt / 255`` in float32, so this
      equals gt / 255 to float32 rounding);
    * prediction: the network output itself, ``in_temp = defocus_map`` (line 516), before the
      decoding to sigma and its clamp at 0 (lines 500-501, used for RTF only): ``net`` in
      unit ``coc/<max_coc>``;
    * both cropped to their top-left multiples of 16 (lines 483 and 486,
      ``utils.refine_image``);
    * per image ``mean((net - gt)^2)`` and ``mean(|net - gt|)`` over all its pixels (lines
      519-520); the test set's figures are the mean of these over images (line 543,
      ``MSE_total / len(test_blur_imgs)``): take the mean of this function's values.

    Computed in float64 (the release: float32 arrays, NumPy's pairwise sums). Returns
    ``{"mse": ..., "mae": ...}``.
    """
    p = np.asarray(net, dtype=np.float64)
    g = np.asarray(coc, dtype=np.float64) / float(max_coc)
    if p.ndim != 2 or p.shape != g.shape:
        raise ValueError(
            f"network output {p.shape} and CoC GT {g.shape} must be 2-D maps of one shape"
        )
    h, w = p.shape[0] - p.shape[0] % RELEASE_STRIDE, p.shape[1] - p.shape[1] % RELEASE_STRIDE
    if not (h and w):
        raise ValueError(f"map {p.shape} is smaller than {RELEASE_STRIDE} px (refine_image)")
    d = p[:h, :w] - g[:h, :w]
    if not np.all(np.isfinite(d)):
        raise ValueError("network output or CoC GT has non-finite values")
    return {"mse": float(np.mean(d * d)), "mae": float(np.mean(np.abs(d)))}
