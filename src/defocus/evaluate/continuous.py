"""Errors of continuous defocus maps (RTF, SYNDOF): MSE and MAE against a GT map.

The maps are in physical units (Gaussian sigma or CoC in pixels). For the RTF benchmark
(D'Andres et al., "Non-parametric blur map regression for depth of field extension",
TIP 2016) DMENet (Lee et al., CVPR 2019) clips sigma to ``[0, 3.275]`` and divides by
3.275 before computing MSE/MAE, for prediction and GT alike (codeslake/DMENet, folder
``evaluation/RTF``); :data:`RTF_SIGMA_MAX` and :func:`rtf_normalise` implement that step.
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
