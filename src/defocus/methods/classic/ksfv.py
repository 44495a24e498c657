"""Kernel-specific feature vectors and an SVM (``ksfv``).

Y. Pang, H. Zhu, X. Li, X. Li, "Classifying discriminative features for blur detection",
IEEE Transactions on Cybernetics 46(10), 2016, pp. 2220-2227.

Pang et al. build, for each local patch, a *kernel-specific feature vector* (KSFV) whose
i-th element is the product of the variance of the blur kernel filtered by the i-th filter
and the variance of the patch's gradients filtered by the same filter; an SVM classifies
the vectors into blurred and sharp. (The kernel factor weights each filter response by how
much a typical blur kernel lets that band through, in the spirit of Chakrabarti et al.'s
likelihood; a fixed kernel makes it a per-feature weight, which matters because the RBF
SVM sees the raw, unstandardised vector.)

Our reading, constants our choices where marked:

* filters ``f_i``: the 2-D DCT-II basis of side ``dct_size`` without the DC term (our
  choice: 5, 24 filters; the paper's filter bank is not available to us);
* kernel ``k``: a Gaussian of std ``kernel_sigma`` (our choice: 2 px, a typical CUHK
  defocus blur); ``var(f_i * k)`` is computed once;
* patch term: the local variance (``window x window``) of ``f_i * g_x`` plus that of
  ``f_i * g_y`` with ``g_x, g_y`` forward differences of the grey image;
* the SVM input is the square root of each element (a monotone compression of the
  products' many decades, our choice, keeping the per-feature kernel weights), scaled by
  one global constant learned in ``fit`` (the median training norm);
* RBF SVM (scikit-learn ``SVC``, ``C``, ``gamma='scale'``) trained on balanced patches
  from the ``train`` manifests; the map is ``sigmoid(decision)`` per pixel, 1 = blurred.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from defocus.methods.base import Method, MethodError, check_image
from defocus.methods.classic._common import (
    check_odd_window,
    check_positive,
    grid_to_full,
    load_labelled_images,
    load_model,
    manifest_paths,
    sample_centres,
    save_model,
    to_gray,
)

log = logging.getLogger(__name__)


def dct_filters(n: int) -> np.ndarray:
    """The n*n - 1 non-DC 2-D DCT-II basis functions of side n, (n*n - 1, n, n)."""
    if int(n) < 2:
        raise ValueError(f"dct_size must be an integer >= 2, got {n!r}")
    n = int(n)
    t = np.arange(n)
    c = np.cos(np.pi * (2 * t[None, :] + 1) * t[:, None] / (2 * n))  # (u, x)
    c[0] /= np.sqrt(2.0)
    c *= np.sqrt(2.0 / n)
    basis = c[:, None, :, None] * c[None, :, None, :]  # (u, v, y, x)
    return basis.reshape(n * n, n, n)[1:].astype(np.float32)


def kernel_variances(filters: np.ndarray, sigma: float) -> np.ndarray:
    """``var(f_i * k)`` over the full support of the filtered kernel, (F,)."""
    from scipy.signal import fftconvolve

    r = int(np.ceil(4 * float(sigma)))
    t = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / float(sigma)) ** 2)
    k = np.outer(g, g) / g.sum() ** 2
    return np.array([fftconvolve(k, f).var() for f in filters], dtype=np.float64)


def ksfv_features(
    gray: np.ndarray, filters: np.ndarray, kvar: np.ndarray, window: int
) -> np.ndarray:
    """Kernel-specific feature vector of the patch around every pixel, (H, W, F).

    Element i: ``var(f_i * k) * (localvar(f_i * g_x) + localvar(f_i * g_y))``.
    """
    g = np.ascontiguousarray(gray, dtype=np.float32)
    dx = cv2.filter2D(g, -1, np.array([[-1, 1]], np.float32), borderType=cv2.BORDER_REFLECT)
    dy = cv2.filter2D(g, -1, np.array([[-1], [1]], np.float32), borderType=cv2.BORDER_REFLECT)
    out = np.empty((*g.shape, len(filters)), dtype=np.float32)
    box = (int(window), int(window))
    for i, f in enumerate(filters):
        v = np.zeros_like(g)
        for d in (dx, dy):
            r = cv2.filter2D(d, -1, f, borderType=cv2.BORDER_REFLECT)
            m = cv2.boxFilter(r, -1, box, borderType=cv2.BORDER_REFLECT)
            m2 = cv2.boxFilter(r * r, -1, box, borderType=cv2.BORDER_REFLECT)
            v += np.maximum(m2 - m * m, 0.0)
        out[..., i] = kvar[i] * v
    return out


class KSFV(Method):
    """Pang et al. 2016 kernel-specific feature vectors classified by an RBF SVM.

    Parameters
    ----------
    window : int
        Odd side of the local patch (our choice: 15).
    dct_size : int
        Side of the DCT filter bank (our choice: 5).
    kernel_sigma : float
        Std of the Gaussian blur kernel of the kernel factor (our choice: 2 px).
    C : float
        SVM regularisation (scikit-learn default 1.0).
    stride : int
        Classify every ``stride``-th pixel and interpolate bilinearly (speed approximation;
        1 = every pixel).
    max_train_images : int
        Training images read (0 = all; paper: their training split of Shi's CUHK set).
    patches_per_image : int
        Training patches per class and image (our choice: 500; demo: 200). The SVM's cost
        grows quadratically in the total.
    seed : int
        Seed of the patch draw (the training entry point's seed wins).
    """

    name = "ksfv"
    citation = (
        "Pang, Zhu, Li, Li, Classifying discriminative features for blur detection, T-Cyb 2016"
    )
    learned = True
    defaults: ClassVar[dict[str, Any]] = {
        "window": 15,
        "dct_size": 5,
        "kernel_sigma": 2.0,
        "C": 1.0,
        "stride": 2,
        "max_train_images": 0,
        "patches_per_image": 500,
        "seed": 0,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.svm = None
        self.scale: float = 1.0

    def feature_map(self, gray: np.ndarray) -> np.ndarray:
        """SVM input (H, W, F): sqrt of the KSFV elements (before the global scale)."""
        w = check_odd_window("window", self.params["window"])
        filters = dct_filters(int(self.params["dct_size"]))
        kvar = kernel_variances(
            filters, check_positive("kernel_sigma", self.params["kernel_sigma"])
        )
        return np.sqrt(ksfv_features(gray, filters, kvar, w))

    # -- training ---------------------------------------------------------------------
    def fit(self, train: Any, cfg: dict | None, workdir: Path) -> Path:
        """Train the SVM on balanced patches of the ``train`` manifests; return the checkpoint."""
        from sklearn.svm import SVC

        cfg = dict(cfg or {})
        p = self.params
        rng = np.random.default_rng(int(cfg.get("seed", p["seed"])))
        images = load_labelled_images(manifest_paths(train), int(p["max_train_images"]))
        border = int(p["window"]) // 2
        xs_, ys_ = [], []
        for gray, mask in images:
            ys, xs, ls = sample_centres(mask, int(p["patches_per_image"]), border, rng)
            xs_.append(self.feature_map(gray)[ys, xs])
            ys_.append(ls)
        x, y = np.concatenate(xs_), np.concatenate(ys_)
        if len(np.unique(y)) < 2:
            raise MethodError(f"ksfv needs sharp and blurred training pixels; got {np.bincount(y)}")
        scale = float(np.median(np.linalg.norm(x, axis=1)))
        scale = scale if scale > 1e-12 else 1.0
        svm = SVC(C=check_positive("C", p["C"]), kernel="rbf", gamma="scale")
        svm.fit(x / scale, y)
        log.info("ksfv: SVM on %d patches, %d support vectors", len(y), int(svm.n_support_.sum()))
        self.svm, self.scale = svm, scale
        blob = np.frombuffer(pickle.dumps(svm), dtype=np.uint8).copy()
        return save_model(workdir, {"svm_pickle": blob, "scale": np.float64(scale)})

    def load(self, checkpoint: Path | None) -> None:
        super().load(checkpoint)  # None -> MethodError
        model = load_model(checkpoint, self.name, ("svm_pickle", "scale"))
        # our own checkpoint (trusted, as torch.load in defocus.train.loop)
        self.svm = pickle.loads(np.asarray(model["svm_pickle"], dtype=np.uint8).tobytes())
        self.scale = float(model["scale"])

    # -- inference --------------------------------------------------------------------
    def decision(self, x: np.ndarray) -> np.ndarray:
        """SVM decision value of feature rows (N, F); positive = blurred."""
        if self.svm is None:
            raise MethodError("ksfv has no SVM: call load(checkpoint) or fit() first")
        return self.svm.decision_function(np.asarray(x, dtype=np.float64) / self.scale)

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        if self.svm is None:
            raise MethodError("ksfv has no SVM: call load(checkpoint) or fit() first")
        stride = int(self.params["stride"])
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {self.params['stride']!r}")
        gray = to_gray(image)
        feats = self.feature_map(gray)[::stride, ::stride]
        gh, gw, f = feats.shape
        dec = self.decision(feats.reshape(-1, f)).reshape(gh, gw).astype(np.float32)
        prob = 1.0 / (1.0 + np.exp(-np.clip(dec, -50, 50)))
        return np.clip(grid_to_full(prob, stride, gray.shape), 0.0, 1.0).astype(np.float32)
