"""From first-layer kernels to a sharpness map (steps 3 and 4 of :mod:`defocus.methods.zeng`):
PCA of the kernels, an orthonormal zero-mean basis of their span, the local energy in that
span, its normalisation, and the iterative tanh refinement. Prediction needs only this
module's OpenCV / NumPy code and the two 7 x 7 kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from defocus.methods.base import MethodError
from defocus.methods.classic._common import check_odd_window


def pca_kernels(weights: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of a set of 2-D kernels (review Sec. 4).

    Parameters
    ----------
    weights : ndarray, (N, k, k) or (N, 1, k, k)
        The N first-layer kernels.
    n_components : int
        K, the number of components kept (2 in the paper).

    Returns
    -------
    components : ndarray, float64 (K, k, k)
        Unit-norm principal directions of the mean-centred 49 x N kernel matrix, by
        decreasing explained variance (the rows of sklearn's ``PCA.components_``).
    explained_variance_ratio : ndarray, (K,)
    """
    from sklearn.decomposition import PCA

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 4:
        w = w[:, 0]
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise ValueError(f"expected kernels (N, k, k) or (N, 1, k, k), got {weights.shape}")
    n, k = w.shape[0], w.shape[1]
    if not 1 <= int(n_components) <= min(n, k * k):
        raise ValueError(f"n_components must be in [1, {min(n, k * k)}], got {n_components!r}")
    pca = PCA(n_components=int(n_components), svd_solver="full").fit(w.reshape(n, k * k))
    return pca.components_.reshape(-1, k, k), pca.explained_variance_ratio_


def metric_kernels(components: np.ndarray, zero_mean: bool = True) -> np.ndarray:
    """Orthonormal float32 basis (K, k, k) of the span of ``components``, DC removed if
    ``zero_mean`` (see :mod:`defocus.methods.zeng`, step 3)."""
    c = np.asarray(components, dtype=np.float64)
    k = c.shape[-1]
    flat = c.reshape(len(c), -1)
    if zero_mean:
        flat = flat - flat.mean(axis=1, keepdims=True)
    q, r = np.linalg.qr(flat.T)
    q = q[:, np.abs(np.diag(r)) > 1e-8 * max(1.0, np.abs(r).max())]
    if q.shape[1] == 0:
        raise MethodError("the principal kernels are constant: no local metric can be formed")
    return np.ascontiguousarray(q.T.reshape(-1, k, k), dtype=np.float32)


def local_metric(grey: np.ndarray, kernels: np.ndarray, window: int = 7) -> np.ndarray:
    """``sqrt(box_window(sum_k (grey * K_k)^2))``: local energy in the kernels' span.

    ``grey`` float32 (H, W) in [0, 1]; ``kernels`` (K, k, k); correlation with mirrored
    borders (``cv2.BORDER_REFLECT_101``).
    """
    g = np.ascontiguousarray(grey, dtype=np.float32)
    energy = np.zeros_like(g)
    for kern in np.asarray(kernels, dtype=np.float32):  # K = 2 filters, not a pixel loop
        r = cv2.filter2D(g, cv2.CV_32F, kern, borderType=cv2.BORDER_REFLECT_101)
        energy += r * r
    w = check_odd_window("metric_window", window, minimum=1)
    if w > 1:
        energy = cv2.boxFilter(energy, -1, (w, w), borderType=cv2.BORDER_REFLECT_101)
    return np.sqrt(np.maximum(energy, 0.0))


def normalise_metric(metric: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """``clip(metric / percentile(metric), 0, 1)``; all zeros when that percentile is 0."""
    m = np.asarray(metric, dtype=np.float32)
    hi = float(np.percentile(m, float(percentile)))
    if not np.isfinite(hi) or hi <= 1e-12:
        return np.zeros_like(m)
    return np.clip(m / hi, 0.0, 1.0).astype(np.float32)


def refine(
    b0: np.ndarray,
    threshold: float,
    iterations: int = 100,
    snapshots: Sequence[int] = (10, 50, 100),
    weights: Sequence[float] = (0.3, 0.2, 0.5),
    window: int = 7,
    gain: float = 1.0,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Tanh refinement of a sharpness map (review Sec. 5; the update rule in the module
    docstring, step 4).

    Parameters
    ----------
    b0 : ndarray, float (H, W) in [0, 1]
        Initial sharpness map (high = sharp).
    threshold : float
        Global threshold T on the neighbourhood mean.
    iterations : int
        N, the number of iterations (100).
    snapshots, weights : sequences
        Iterations N1, N2, N3 (10, 50, 100) whose results are combined, and their weights
        (0.3, 0.2, 0.5).
    window : int
        Odd side of the neighbourhood of the mean.
    gain : float
        g in ``tanh(g x) / tanh(g)`` (1 = plain tanh, rescaled to map 1 to 1).

    Returns
    -------
    combined : ndarray, float32 (H, W)
        ``sum_i weights[i] * B_{snapshots[i]}``.
    maps : dict
        ``{n: B_n}`` for every snapshot.
    """
    n_iter = int(iterations)
    snaps = [int(s) for s in snapshots]
    if len(snaps) != len(weights) or not snaps:
        raise ValueError(f"snapshots {snaps} and weights {list(weights)} must have equal length")
    if min(snaps) < 0 or max(snaps) > n_iter:
        raise ValueError(f"snapshots {snaps} must lie in [0, iterations={n_iter}]")
    g = float(gain)
    if not g > 0:
        raise ValueError(f"gain must be positive, got {gain!r}")
    w = check_odd_window("refine_window", window, minimum=1)
    scale = np.float32(1.0 / np.tanh(g))
    b = np.clip(np.asarray(b0, dtype=np.float32), 0.0, 1.0)
    maps = {0: b.copy()} if 0 in snaps else {}
    for t in range(1, n_iter + 1):
        m = cv2.boxFilter(b, -1, (w, w), borderType=cv2.BORDER_REFLECT_101)
        b = np.where(m >= threshold, np.tanh(g * b) * scale, np.float32(0.0)).astype(np.float32)
        if t in snaps:
            maps[t] = b
    combined = np.zeros_like(b)
    for s, a in zip(snaps, weights, strict=True):
        combined += np.float32(a) * maps[s]
    return combined, maps
