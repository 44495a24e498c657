"""Zeng et al. TIP'19: a local sharpness metric learned from ConvNet kernels (``zeng``).

K. Zeng, Y. Wang, J. Mao, J. Liu, W. Peng, N. Chen, "A local metric for defocus blur
detection based on CNN feature learning", IEEE Transactions on Image Processing 28(5),
2019, pp. 2107-2115.

No code was published and the full text is not available to this project; what follows
relies on the abstract and on S.-H. Tsang's review (``shared/papers/
zeng2019_local_metric_review.txt``, cited below as "review Sec. n"). Every value the review
does not give is marked **own choice** with its reason.

Pipeline
--------
1. **Patches** (review Sec. 2). SLIC superpixels (Achanta et al. TPAMI 2012, the review's
   ref. [27]) are computed on every training image; an ``s x s`` grey patch is cut at each
   superpixel's centroid and labelled *blurred* when the blurred share of the patch in the
   binary ground truth is at least ``label_threshold``, *sharp* when the sharp share is, and
   dropped otherwise. Patches are computed once per ``fit`` and kept in memory (uint8).
2. **ConvNet** (review Sec. 3). A VGG-like net of alternating multi-convolution and
   sub-sampling (max-pool) stages with batch normalisation and CReLU activations
   (``concat(relu(x), relu(-x))``, Shang et al. ICML 2016), a fully connected layer and a
   2-class logistic (softmax) output trained with cross-entropy. The input is the grey
   patch (BT.601 luminance in [0, 1]) normalised by a batch-normalisation layer (review:
   "a batch normalization algorithm is used to normalize the input data"); the first
   convolution has ``kernels`` filters of 7 x 7 (review Sec. 4).
3. **Local metric by PCA** (review Sec. 4). The N first-layer kernels are reshaped to
   49-vectors (the 49 x N matrix of the review) and a PCA (mean-centred, as
   ``sklearn.decomposition.PCA``, whose ``explained_variance_ratio_`` the review quotes)
   keeps K = 2 components, reshaped to 7 x 7 kernels K1, K2. The kernels are computed
   at :meth:`Zeng.load` time from the first-layer weights of the checkpoint (nothing
   else is stored). How the paper combines the responses L1, L2 is not in the review;
   here (**own choice**) the metric is the local energy of the image in the subspace the
   two components span::

       L = sqrt( box_w( (I * Q1)^2 + (I * Q2)^2 ) )

   where ``Q1, Q2`` is an orthonormal basis of ``span(K1, K2)`` with its DC (mean)
   removed (``zero_mean``: a sharpness metric must not respond to flat brightness; the
   kernels' DC is irrelevant to the net after its input normalisation, so it is mostly
   left from random initialisation), ``*`` is correlation (``cv2.filter2D``) and
   ``box_w`` a ``metric_window`` mean. The energy is invariant to the arbitrary signs
   of the principal components and to rotations within their span.
4. **Iterative refinement with tanh** (review Sec. 5). ``B0 = clip(L / P_q(L), 0, 1)``
   (``P_q`` the ``norm_percentile``-th percentile; a robust max, **own choice**). With
   the global threshold ``T = threshold_scale * mean(B0)`` (**own choice**: the review only
   says "global threshold") and ``m_t`` the ``refine_window`` neighbourhood mean of
   ``B_{t-1}``::

       B_t = 0                            where m_t <  T   (blurred)
       B_t = tanh(g B_{t-1}) / tanh(g)    where m_t >= T   (sharp)

   for t = 1..N, N = 100. The tanh update is scaled by ``tanh(g)`` (**own choice**) so
   that it maps [0, 1] onto [0, 1] and raises every value in (0, 1), as the review says
   the update "enhances the response of the unblurred region"; ``g = gain = 1`` is the
   plain tanh. The results at N1 = 10, N2 = 50, N3 = 100 are combined with weights 0.3,
   0.2, 0.5 (review Sec. 5): ``S = 0.3 B_10 + 0.2 B_50 + 0.5 B_100`` in [0, 1].
5. The blur map is the complement of the sharpness map, ``1 - S`` (1 = blurred).

Prediction needs only the two 7 x 7 kernels and box filters: it runs with OpenCV on the
CPU whatever ``device`` is (``device`` is used by :meth:`Zeng.fit`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from defocus.methods.base import Method, MethodError, check_image
from defocus.methods.classic._common import check_odd_window, to_gray

log = logging.getLogger(__name__)

#: state-dict key of the first convolution, whose kernels give the local metric
FIRST_LAYER = "conv1.weight"
#: class indices of the ConvNet's output
SHARP, BLURRED = 0, 1


# --------------------------------------------------------------------------------------
# 1. patches at superpixel centroids
# --------------------------------------------------------------------------------------
def superpixel_patches(
    image: np.ndarray,
    blurred: np.ndarray,
    patch: int = 32,
    n_segments: int = 300,
    compactness: float = 10.0,
    label_threshold: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled grey patches centred on the SLIC superpixels of one image (review Sec. 2).

    Parameters
    ----------
    image : ndarray, uint8 (H, W, 3)
        RGB training image.
    blurred : ndarray, bool (H, W)
        Ground truth, True = blurred.
    patch : int
        Side ``s`` of the square patch (pixels); the image is mirrored at its borders.
    n_segments, compactness : int, float
        Arguments of :func:`skimage.segmentation.slic` (approximate number of superpixels;
        colour/space trade-off, 10 is scikit-image's default).
    label_threshold : float in (0.5, 1]
        A patch is blurred when its blurred share is ``>= label_threshold``, sharp when its
        sharp share is; patches in between are dropped.

    Returns
    -------
    patches : ndarray, uint8 (P, s, s)
        Grey patches (BT.601 luminance).
    labels : ndarray, int64 (P,)
        :data:`BLURRED` (1) or :data:`SHARP` (0).
    """
    from skimage.segmentation import slic

    image = check_image(image)
    blurred = np.asarray(blurred, dtype=bool)
    if blurred.shape != image.shape[:2]:
        raise ValueError(f"GT shape {blurred.shape} differs from image shape {image.shape[:2]}")
    if not 0.5 < float(label_threshold) <= 1.0:
        raise ValueError(f"label_threshold must be in (0.5, 1], got {label_threshold!r}")
    s = int(patch)
    if s < 8:
        raise ValueError(f"patch must be >= 8 pixels, got {patch!r}")
    h, w = blurred.shape
    seg = slic(
        image, n_segments=int(n_segments), compactness=float(compactness), start_label=0
    ).ravel()
    counts = np.bincount(seg)
    keep = counts > 0
    yy, xx = np.indices((h, w))
    cy = np.rint(np.bincount(seg, weights=yy.ravel())[keep] / counts[keep]).astype(np.intp)
    cx = np.rint(np.bincount(seg, weights=xx.ravel())[keep] / counts[keep]).astype(np.intp)
    # patch of side s whose centre pixel is (cy, cx): rows cy - s//2 .. cy - s//2 + s - 1
    pad = ((s // 2, s - 1 - s // 2), (s // 2, s - 1 - s // 2))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    grey_win = sliding_window_view(np.pad(grey, pad, mode="reflect"), (s, s))
    gt_win = sliding_window_view(np.pad(blurred.astype(np.float32), pad, mode="reflect"), (s, s))
    frac = gt_win[cy, cx].mean(axis=(1, 2))
    thr = float(label_threshold)
    is_blur, is_sharp = frac >= thr, frac <= 1.0 - thr
    sel = is_blur | is_sharp
    labels = np.where(is_blur[sel], BLURRED, SHARP).astype(np.int64)
    return np.ascontiguousarray(grey_win[cy[sel], cx[sel]]), labels


def manifest_patches(
    manifests: Sequence[str | Path], **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`superpixel_patches` over the ``train`` split of manifests (rows with a GT).

    GT masks are binary PNGs with 255 = blurred (manifest contract); > 127 counts as blurred.
    """
    from defocus.io.image import read_gray, read_image
    from defocus.io.manifest import read_manifest

    xs, ys = [], []
    for m in manifests:
        df = read_manifest(m, split="train")
        for img_path, gt_path in zip(df["image"], df["gt"], strict=True):
            if not gt_path:
                continue
            gt = read_gray(gt_path)
            thr = 127 if gt.dtype == np.uint8 else 32767
            x, y = superpixel_patches(read_image(img_path), gt > thr, **kwargs)
            xs.append(x)
            ys.append(y)
    if not xs:
        names = [str(m) for m in manifests]
        raise MethodError(f"no training image with a ground-truth mask in {names}")
    return np.concatenate(xs), np.concatenate(ys)


# --------------------------------------------------------------------------------------
# 2. the ConvNet
# --------------------------------------------------------------------------------------
class CReLU(nn.Module):
    """Concatenated ReLU, ``cat(relu(x), relu(-x))`` on the channel axis (doubles channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(x), F.relu(-x)], dim=1)


class ZengNet(nn.Module):
    """VGG-like patch classifier: sharp (0) vs blurred (1) (review Sec. 3).

    ``input BN -> conv k x k (kernels) -> BN -> CReLU -> maxpool`` then, for each width ``c``
    in ``widths``, ``[conv 3x3 (c) -> BN -> CReLU] x 2 -> maxpool``; then a fully connected
    layer of ``fc`` units with CReLU and a 2-way linear (logistic) output.

    Parameters
    ----------
    kernels : int
        Number N of first-layer kernels.
    widths : sequence of int
        Channels of the later convolution stages (before CReLU doubles them).
    fc : int
        Units of the fully connected layer.
    patch : int
        Input side; must be divisible by ``2 ** (1 + len(widths))``.
    kernel_size : int
        Side of the first-layer kernels (7, review Sec. 4).
    """

    def __init__(
        self,
        kernels: int = 32,
        widths: Sequence[int] = (32, 64),
        fc: int = 128,
        patch: int = 32,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        n_pool = 1 + len(widths)
        if patch % 2**n_pool:
            raise ValueError(f"patch {patch} must be divisible by 2**{n_pool} = {2**n_pool}")
        k = check_odd_window("kernel_size", kernel_size)
        self.input_bn = nn.BatchNorm2d(1)
        self.conv1 = nn.Conv2d(1, int(kernels), k, padding=k // 2, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(int(kernels)), CReLU(), nn.MaxPool2d(2)]
        c = 2 * int(kernels)
        for wd in widths:
            wd = int(wd)
            layers += [
                nn.Conv2d(c, wd, 3, padding=1, bias=False),
                nn.BatchNorm2d(wd),
                CReLU(),
                nn.Conv2d(2 * wd, wd, 3, padding=1, bias=False),
                nn.BatchNorm2d(wd),
                CReLU(),
                nn.MaxPool2d(2),
            ]
            c = 2 * wd
        self.features = nn.Sequential(*layers)
        side = patch // 2**n_pool
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c * side * side, int(fc)), CReLU(), nn.Linear(2 * int(fc), 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, 1, s, s) grey in [0, 1] -> logits (B, 2)."""
        return self.head(self.features(self.conv1(self.input_bn(x))))


def patches_to_tensor(patches: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """uint8 (B, s, s) patches -> float (B, 1, s, s) in [0, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.uint8))
    return (x.to(device).float() / 255.0).unsqueeze(1)


@torch.no_grad()
def classify(model: nn.Module, patches: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Predicted class (0 sharp, 1 blurred) of uint8 patches, in eval mode, batches of 1024."""
    model.eval()
    out = [
        model(patches_to_tensor(patches[i : i + 1024], device)).argmax(1).cpu().numpy()
        for i in range(0, len(patches), 1024)
    ]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flip and rotation by a multiple of 90 degrees per patch (own choice:
    defocus blur is isotropic, so these leave the label unchanged)."""
    x = x.copy()
    flip = rng.random(len(x)) < 0.5
    x[flip] = x[flip, :, ::-1]
    k = rng.integers(0, 4, size=len(x))
    for r in range(1, 4):
        sel = k == r
        x[sel] = np.rot90(x[sel], r, axes=(1, 2))
    return x


# --------------------------------------------------------------------------------------
# 3. the local metric: PCA of the first-layer kernels
# --------------------------------------------------------------------------------------
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
    ``zero_mean`` (see the module docstring, step 3)."""
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


# --------------------------------------------------------------------------------------
# 4. iterative refinement with tanh
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# 5. the method
# --------------------------------------------------------------------------------------
class Zeng(Method):
    """Zeng et al. TIP'19 local metric from ConvNet kernels, refined with tanh.

    Parameters (``defaults``)
    -------------------------
    patch : int
        Side s of the training patches. Not in the review; own choice 32 (divisible by the
        8 of three poolings, about the 27-41 px patches other patch-based DBD nets use).
    n_segments, compactness : int, float
        SLIC superpixels per image (own choice 300: ~1 superpixel per 32x32 px of a
        640x480 CUHK image) and compactness (10, scikit-image's default).
    label_threshold : float
        Blurred/sharp share of a patch needed for its label (own choice 0.9: only patches
        clearly inside one region; the review says "a threshold" without its value).
    kernels, kernel_size : int
        N first-layer kernels (own choice 32) of 7 x 7 (review Sec. 4).
    widths, fc : list of int, int
        Channels of the two later stages (own choice [32, 64]) and fully connected units
        (own choice 128) — a small VGG-like net; only the first layer is used later.
    batch, iterations, lr, weight_decay : int, int, float, float
        Balanced batches (half blurred, half sharp; own choice, CUHK is mostly blurred) of
        128, 20000 Adam iterations at 1e-3 with weight decay 5e-4 (own choice; the review
        gives no optimiser settings).
    n_components : int
        K = 2 principal components (review Sec. 4).
    zero_mean : bool
        Remove the DC of the principal kernels (own choice, module docstring step 3).
    metric_window : int
        Box window of the local energy (own choice 7, the kernels' size).
    norm_percentile : float
        Percentile mapped to 1 when normalising the metric (own choice 99: a robust max).
    refine_window : int
        Neighbourhood of the refinement's mean (own choice 7).
    threshold_scale : float
        Global threshold T = threshold_scale * mean(B0) (own choice 1.0).
    gain : float
        g of the tanh update (own choice 1.0 = plain tanh).
    refine_iterations, refine_at, refine_weights
        N = 100; N1, N2, N3 = 10, 50, 100; alpha = 0.3, 0.2, 0.5 (review Sec. 5).
    """

    name = "zeng"
    fidelity = {
        "implementation": "reconstruction",
        "differs": (
            "rebuilt from a review of the paper; choices it does not give are marked own choice"
        ),
    }
    learned = True
    citation = (
        "Zeng, Wang, Mao, Liu, Peng, Chen, A local metric for defocus blur detection "
        "based on CNN feature learning, IEEE TIP 2019"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "patch": 32,
        "n_segments": 300,
        "compactness": 10.0,
        "label_threshold": 0.9,
        "kernels": 32,
        "kernel_size": 7,
        "widths": [32, 64],
        "fc": 128,
        "batch": 128,
        "iterations": 20000,
        "lr": 1e-3,
        "weight_decay": 5e-4,
        "n_components": 2,
        "zero_mean": True,
        "metric_window": 7,
        "norm_percentile": 99.0,
        "refine_window": 7,
        "threshold_scale": 1.0,
        "gain": 1.0,
        "refine_iterations": 100,
        "refine_at": [10, 50, 100],
        "refine_weights": [0.3, 0.2, 0.5],
    }

    kernels: np.ndarray | None = None
    explained_variance_ratio: np.ndarray | None = None

    def build_model(self) -> ZengNet:
        """The ConvNet of these parameters (untrained)."""
        p = self.params
        return ZengNet(p["kernels"], p["widths"], p["fc"], p["patch"], p["kernel_size"])

    # -- training ---------------------------------------------------------------------
    def fit(
        self, train: dict[str, list[Path]] | Sequence[Path], cfg: dict | None, workdir: Path
    ) -> Path:
        """Train the ConvNet on superpixel patches of the ``train`` manifests.

        Parameters
        ----------
        train : dict
            ``{"train": [manifest.csv, ...]}`` (a plain list of manifests is accepted too).
        cfg : dict
            ``seed`` and ``device`` (and optionally ``progress``, ``ckpt_every``).
        workdir : Path
            Checkpoints and the loss log of :func:`defocus.train.loop.train`.

        Returns
        -------
        Path
            ``workdir/checkpoint.pt``.
        """
        manifests = train.get("train", []) if isinstance(train, dict) else list(train)
        if not manifests:
            raise MethodError(f"zeng needs manifests under the 'train' role, got {train!r}")
        p = self.params
        patches, labels = manifest_patches(
            manifests,
            patch=p["patch"],
            n_segments=p["n_segments"],
            compactness=p["compactness"],
            label_threshold=p["label_threshold"],
        )
        return self.fit_patches(patches, labels, cfg, workdir)

    def fit_patches(
        self, patches: np.ndarray, labels: np.ndarray, cfg: dict | None, workdir: Path
    ) -> Path:
        """Train on in-memory uint8 patches (B, s, s) with labels 0 sharp / 1 blurred."""
        from defocus.train.loop import TrainConfig
        from defocus.train.loop import train as train_loop

        cfg = dict(cfg or {})
        p = self.params
        by_class = [np.flatnonzero(labels == c) for c in (SHARP, BLURRED)]
        if min(len(i) for i in by_class) == 0:
            raise MethodError(
                f"zeng needs both sharp and blurred patches; got {len(by_class[0])} sharp and "
                f"{len(by_class[1])} blurred (lower label_threshold or add images)"
            )
        log.info("zeng: %d sharp and %d blurred patches", *map(len, by_class))
        device = str(cfg.get("device", self.device))
        half = max(1, int(p["batch"]) // 2)

        def sample_batch(rng: np.random.Generator, dev: str):
            idx = np.concatenate([rng.choice(i, size=half) for i in by_class])
            x = _augment(patches[idx], rng)
            y = torch.from_numpy(labels[idx]).to(dev)
            return patches_to_tensor(x, dev), y

        def step_loss(model: nn.Module, batch):
            x, y = batch
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            acc = (logits.argmax(1) == y).float().mean()
            return loss, {"acc": float(acc)}

        seed = int(cfg.get("seed", 0))
        torch.manual_seed(seed)  # the initial weights depend on the seed only
        model = self.build_model()
        opt = torch.optim.Adam(
            model.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"])
        )
        n_iter = int(p["iterations"])
        tcfg = TrainConfig(
            iterations=n_iter,
            seed=seed,
            device=device,
            ckpt_every=int(cfg.get("ckpt_every", max(1, min(1000, n_iter)))),
            progress=bool(cfg.get("progress", True)),
            extra={"method": self.name, "params": dict(p)},
        )
        ckpt = train_loop(model, opt, tcfg, workdir, sample_batch, step_loss)
        self.model = model  # the trained ConvNet (for evaluation on patches)
        return ckpt

    # -- loading ----------------------------------------------------------------------
    def load(self, checkpoint: Path | None) -> None:
        """Read the first-layer kernels of a checkpoint and compute the PCA kernels.

        Accepts the product checkpoint (``model.pt`` of :func:`defocus.train.loop.finalize`)
        or the loop's ``checkpoint.pt``; both hold the state dict under ``"model"``. Only
        ``conv1.weight`` is used; the kernels are not stored, they are recomputed here.
        """
        super().load(checkpoint)  # None -> MethodError
        path = Path(checkpoint)  # type: ignore[arg-type]
        if not path.is_file():
            raise MethodError(
                f"zeng checkpoint not found: {path}; train it with "
                "`snakemake results/models/zeng/model.pt`"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise MethodError(f"cannot read zeng checkpoint {path}: {e}") from e
        if not isinstance(state, dict) or FIRST_LAYER not in state.get("model", {}):
            raise MethodError(f"{path} is not a zeng checkpoint (no model[{FIRST_LAYER!r}])")
        if state.get("method") not in (None, self.name) and not str(state.get("method")).startswith(
            self.name + "@"
        ):
            raise MethodError(f"{path} was written by method {state['method']!r}, not 'zeng'")
        w = state["model"][FIRST_LAYER].float().numpy()
        self.set_first_layer(w)

    def set_first_layer(self, weights: np.ndarray) -> None:
        """Compute the metric kernels from first-layer weights (N, 1, k, k)."""
        comps, ratio = pca_kernels(weights, int(self.params["n_components"]))
        self.kernels = metric_kernels(comps, bool(self.params["zero_mean"]))
        self.explained_variance_ratio = ratio

    # -- inference --------------------------------------------------------------------
    def sharpness(self, image: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Refined sharpness map S in [0, 1] (1 = sharp) and the snapshots ``{n: B_n}``
        (with ``0: B0``, the normalised local metric)."""
        if self.kernels is None:
            raise MethodError("zeng has no kernels: call load(checkpoint) first")
        image = check_image(image)
        p = self.params
        b0 = normalise_metric(
            local_metric(to_gray(image), self.kernels, int(p["metric_window"])),
            float(p["norm_percentile"]),
        )
        threshold = float(p["threshold_scale"]) * float(b0.mean())
        s, maps = refine(
            b0,
            threshold,
            iterations=int(p["refine_iterations"]),
            snapshots=p["refine_at"],
            weights=p["refine_weights"],
            window=int(p["refine_window"]),
            gain=float(p["gain"]),
        )
        maps[0] = b0
        return s, maps

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Blur map ``1 - S``: float32 (H, W) in [0, 1], 1 = blurred."""
        s, _ = self.sharpness(image)
        return np.clip(1.0 - s, 0.0, 1.0).astype(np.float32)
