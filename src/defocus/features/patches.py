"""Multi-scale edge patches of Park et al. (CVPR'17, DHDE) and the HDF5 patch file.

Training data (Sec. 5.1; ``DHDE_feature_extraction.m`` and ``EdgeExtractor.m`` of the
release): on every sharp image, Canny edges of the HSV V channel at two threshold pairs give
**strong** edges (small 15x15 patches, scale 0) and **weak** edges (large 27x27 patches,
scale 1); a pixel on a strong edge is small-scale even when the weak detector also fires. The
two scales are balanced per image (the same number of locations each). Every location is cut
from the image blurred by each of the ``L = 11`` Gaussians ``sigma_l = 0.5 + 0.15 (l - 1)``
(Eq. 10; 27x27 kernel, replicate border), so one location gives 11 labelled patches.

The patch file ``results/patches/{dataset}.h5`` (written to a temporary name, then renamed):

=================  ====================  ===================================================
dataset            shape, dtype          content
=================  ====================  ===================================================
``patches_large``  (N, 27, 27, 3) uint8  RGB context of the patch centre (replicate border);
                                         a small patch is its central 15x15
``scale``          (N,) uint8            0 = small / strong edge, 1 = large / weak edge
``label``          (N,) uint8            blur label 0..10 (sigma in attribute ``sigmas``)
``source``         (N,) int32            index of the source image (attribute ``sources``)
``split``          (N,) uint8            0 = train, 1 = val; split by source image
``center``         (N, 2) int32          (row, col) of the patch centre in the source image
``features``       (N, 120) float32      ``[f_D, f_G, f_S]``, scale-encoded (Figure 7)
=================  ====================  ===================================================
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defocus.features.handcrafted import (
    FEATURE_DIM,
    PATCH_SIZE,
    gradient_magnitude,
    handcrafted_features,
    value_channel,
)
from defocus.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: number of blur labels L (Sec. 5.1)
N_LABELS = 11
#: sigma_min and sigma_inter of Eq. 10 (Sec. 5.1)
SIGMA_MIN, SIGMA_STEP = 0.5, 0.15
#: Gaussian sigma of each label, Eq. 10: 0.5, 0.65, ..., 2.0 (ParameterSetting.m: sList)
SIGMAS = SIGMA_MIN + SIGMA_STEP * np.arange(N_LABELS)
#: side of the blur kernel (ParameterSetting.m: wKernel = 2 * 13 + 1)
KERNEL_SIZE = 27
#: side of the stored RGB context = the CNN input (ParameterSetting.m: wRef = 27)
LARGE = PATCH_SIZE[1]
#: Canny (low, high) thresholds relative to the largest gradient, per edge strength
#: (ParameterSetting.m: edgeThLowFE/edgeThHighFE for training, edgeThLowCL/HighCL at test)
CANNY_TRAIN = {"weak": (0.234, 0.351), "strong": (0.468, 0.702)}
CANNY_TEST = {"weak": (0.117, 0.176), "strong": (0.234, 0.351)}
#: smoothing of MATLAB's ``edge(I, 'canny')`` (its default sigma, sqrt(2))
CANNY_SIGMA = float(np.sqrt(2.0))
SPLIT_NAMES = ("train", "val")
_CHUNK = 256


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an RGB uint8 image (27x27 kernel, replicate border), rounded to uint8.

    ``fspecial('gaussian', [27 27], sigma)`` + ``imfilter(..., 'replicate')`` of the release;
    rounding makes training patches quantised like real photographs.
    """
    import cv2

    out = cv2.GaussianBlur(
        image.astype(np.float32),
        (KERNEL_SIZE, KERNEL_SIZE),
        sigmaX=float(sigma),
        sigmaY=float(sigma),
        borderType=cv2.BORDER_REPLICATE,
    )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


#: implementations of the relative-threshold Canny (``canny_relative(..., impl=...)``)
CANNY_IMPLS = ("matlab", "skimage")


def canny_relative(
    v: np.ndarray, low: float, high: float, sigma: float = CANNY_SIGMA, impl: str = "matlab"
) -> np.ndarray:
    """Canny edges with thresholds relative to the largest gradient (MATLAB convention).

    ``impl="matlab"`` (default): MATLAB's ``edge(I, 'canny', [low high], sigma)`` step by step
    (:func:`defocus.features.canny.matlab_canny`), as the release calls it.
    ``impl="skimage"``: :func:`skimage.feature.canny` with its absolute thresholds scaled by
    the maximum of the same Gaussian-smoothed Sobel magnitude scikit-image computes (an
    approximation kept for comparison).
    """
    if impl not in CANNY_IMPLS:
        raise ValueError(f"Canny impl must be one of {CANNY_IMPLS}, got {impl!r}")
    if not 0 <= low <= high:
        raise ValueError(f"Canny thresholds must satisfy 0 <= low <= high, got ({low}, {high})")
    if impl == "matlab":
        from defocus.features.canny import matlab_canny

        return matlab_canny(v, low, high, sigma)
    from scipy import ndimage
    from skimage.feature import canny

    smoothed = ndimage.gaussian_filter(v, sigma, mode="nearest")
    mag = np.hypot(ndimage.sobel(smoothed, axis=0), ndimage.sobel(smoothed, axis=1))
    top = float(mag.max())
    if top <= 0:
        return np.zeros(v.shape, dtype=bool)
    return canny(v, sigma=sigma, low_threshold=low * top, high_threshold=high * top)


def edge_scales(
    image: np.ndarray,
    weak: Sequence[float] = CANNY_TEST["weak"],
    strong: Sequence[float] = CANNY_TEST["strong"],
    sigma: float = CANNY_SIGMA,
    impl: str = "matlab",
) -> np.ndarray:
    """Scale map of an RGB uint8 image: -1 no edge, 0 strong edge (small), 1 weak edge (large).

    Canny on the HSV V channel (Sec. 3) at the ``weak`` and ``strong`` (low, high) pairs;
    strong wins where both fire (``EdgeExtractor.m``: ``max(edgIdx, k * edge)``).
    """
    v = value_channel(image)
    out = np.full(v.shape, -1, dtype=np.int8)
    out[canny_relative(v, weak[0], weak[1], sigma, impl)] = 1
    out[canny_relative(v, strong[0], strong[1], sigma, impl)] = 0
    return out


def balanced_edges(
    scale_map: np.ndarray, rng: np.random.Generator, n_max: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same number of random strong and weak edge pixels (``EdgeExtractor.m`` balance).

    Returns ``rows, cols, scales``; each scale gets ``min(n_strong, n_weak, n_max)`` pixels.
    """
    where = [np.flatnonzero(scale_map.ravel() == s) for s in (0, 1)]
    n = min(len(where[0]), len(where[1]))
    if n_max is not None:
        n = min(n, int(n_max))
    picks = [np.sort(rng.choice(w, size=n, replace=False)) for w in where]
    flat = np.concatenate(picks)
    rows, cols = np.unravel_index(flat, scale_map.shape)
    scales = np.repeat(np.array([0, 1], dtype=np.uint8), n)
    return rows.astype(np.int64), cols.astype(np.int64), scales


def cut_patches(arr: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` windows centred at (rows, cols), replicate border; no Python loop.

    ``arr`` is (H, W) or (H, W, C); the result is (N, size, size) or (N, size, size, C).
    """
    if size % 2 != 1:
        raise ValueError(f"patch size must be odd, got {size}")
    r = size // 2
    pad = [(r, r), (r, r)] + [(0, 0)] * (arr.ndim - 2)
    padded = np.pad(arr, pad, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(0, 1))
    out = windows[rows, cols]  # (N, [C,] size, size)
    return np.moveaxis(out, 1, -1) if arr.ndim == 3 else out


def centre_crop(patches: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` region of (N, S, S[, C]) patches."""
    big = patches.shape[1]
    o = (big - size) // 2
    return patches[:, o : o + size, o : o + size]


def cnn_input(patches_large: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The CNN's 27x27 RGB input: small patches replicate-padded from their central 15x15.

    ``DHDE_feature_extraction.m``: ``padarray(pRgb, [6 6], 'replicate', 'both')`` for the small
    scale (the paper, Sec. 3.5, says zero-padded; the release replicates).
    """
    out = np.array(patches_large, copy=True)
    small = np.flatnonzero(np.asarray(scales) == 0)
    if small.size:
        s = PATCH_SIZE[0]
        o = (LARGE - s) // 2
        idx = np.clip(np.arange(LARGE) - o, 0, s - 1) + o  # replicate the 15x15 border
        out[small] = out[small][:, idx][:, :, idx]
    return out


def patch_data(
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    scales: np.ndarray,
    grad_kind: str = "forward",
) -> tuple[np.ndarray, np.ndarray]:
    """RGB contexts and hand-crafted features of the patches of one RGB uint8 image.

    Returns ``patches_large`` (N, 27, 27, 3) uint8 and ``features`` (N, 120) float32; the
    gradient is computed on the whole image and then cut, as in the release.
    """
    v = value_channel(image)
    grad = gradient_magnitude(v, grad_kind)
    rgb = cut_patches(image, rows, cols, LARGE)
    feats = np.zeros((len(rows), 3 * FEATURE_DIM), dtype=np.float32)
    for s in (0, 1):
        sel = np.flatnonzero(scales == s)
        if sel.size:
            size = PATCH_SIZE[s]
            feats[sel] = handcrafted_features(
                cut_patches(v, rows[sel], cols[sel], size),
                s,
                grad=cut_patches(grad, rows[sel], cols[sel], size),
            )
    return rgb, feats


def single_scale_features(patches_large: np.ndarray, grad_kind: str = "forward") -> np.ndarray:
    """Features of every patch as a large (27x27) patch: the single-scale ablation (Sec. 3.6).

    Computed from the stored uint8 contexts; the gradient is taken inside the patch.
    """
    v = value_channel(np.asarray(patches_large))
    out = np.zeros((len(v), 3 * FEATURE_DIM), dtype=np.float32)
    for start in range(0, len(v), 4096):
        out[start : start + 4096] = handcrafted_features(v[start : start + 4096], 1, kind=grad_kind)
    return out


def split_sources(n_sources: int, val_fraction: float, seed: int) -> np.ndarray:
    """Per-source split (0 = train, 1 = val): ``round(val_fraction * n)`` sources, at least one
    when there are two or more sources and ``val_fraction > 0``, never all of them."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    split = np.zeros(n_sources, dtype=np.uint8)
    if n_sources < 2 or val_fraction == 0:
        return split
    n_val = min(n_sources - 1, max(1, round(val_fraction * n_sources)))
    rng = np.random.default_rng([int(seed), 7])
    split[rng.choice(n_sources, size=n_val, replace=False)] = 1
    return split


class _Writer:
    """Appends rows to resizable, chunked, gzip-compressed datasets."""

    SPECS = {
        "patches_large": ((LARGE, LARGE, 3), np.uint8),
        "scale": ((), np.uint8),
        "label": ((), np.uint8),
        "source": ((), np.int32),
        "split": ((), np.uint8),
        "center": ((2,), np.int32),
        "features": ((3 * FEATURE_DIM,), np.float32),
    }

    def __init__(self, h5) -> None:
        self.n = 0
        self.ds = {
            name: h5.create_dataset(
                name,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(_CHUNK, *shape),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
            )
            for name, (shape, dtype) in self.SPECS.items()
        }

    def append(self, rows: dict[str, np.ndarray]) -> None:
        k = len(rows["label"])
        for name, ds in self.ds.items():
            ds.resize(self.n + k, axis=0)
            ds[self.n : self.n + k] = rows[name].astype(self.SPECS[name][1], copy=False)
        self.n += k


def sample_patches(
    manifest_csv: str | os.PathLike,
    out_h5: str | os.PathLike,
    n_per_image: int | None,
    seed: int = 0,
    val_fraction: float = 0.25,
    canny_weak: Sequence[float] = CANNY_TRAIN["weak"],
    canny_strong: Sequence[float] = CANNY_TRAIN["strong"],
    canny_sigma: float = CANNY_SIGMA,
    sigmas: Sequence[float] = tuple(SIGMAS),
    split: str | None = None,
    max_images: int | None = None,
    grad_kind: str = "forward",
) -> Path:
    """Sample labelled multi-scale edge patches from the sharp images of a manifest.

    Parameters
    ----------
    manifest_csv : path
        Dataset manifest; its ``image`` column names the sharp images.
    out_h5 : path
        The patch file (layout in the module docstring); written atomically.
    n_per_image : int or None
        Edge locations per scale and image (fewer when an image has fewer edges of a scale);
        each location yields ``len(sigmas)`` patches, so an image gives up to
        ``2 * n_per_image * len(sigmas)`` rows. ``None``: every balanced edge, as the
        release (``EdgeExtractor.m`` with ``fBalance`` keeps ``min(n_strong, n_weak)`` per
        scale, no cap).
    seed : int
        Seeds the choice of locations (per image) and of validation sources.
    val_fraction : float
        Fraction of source images held out as the ``val`` split (no source in both).
    canny_weak, canny_strong : (low, high)
        Relative Canny thresholds of weak and strong edges (release training values).
    canny_sigma : float
        Smoothing of the Canny detector (MATLAB default sqrt(2)).
    sigmas : sequence of float
        Gaussian sigma of each label (Eq. 10).
    split : str, optional
        Use only the manifest rows of this split (default: all rows).
    max_images : int, optional
        Use only the first ``max_images`` rows.
    grad_kind : str
        Gradient of ``f_G``: ``forward`` (release) or ``sobel`` (paper text).

    Returns
    -------
    Path of the written file.
    """
    import h5py

    from defocus.io.image import read_image
    from defocus.io.manifest import read_manifest

    if n_per_image is not None and int(n_per_image) < 1:
        raise ValueError(f"n_per_image must be >= 1, got {n_per_image!r}")
    df = read_manifest(manifest_csv, split=split)
    if max_images is not None:
        df = df.iloc[: int(max_images)]
    if df.empty:
        raise ValueError(f"manifest {manifest_csv} has no images (split={split!r})")
    sigmas = np.asarray(sigmas, dtype=np.float64)
    ids = [str(i) for i in df["id"]]
    src_split = split_sources(len(ids), val_fraction, seed)
    total = 0
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as h5:
        w = _Writer(h5)
        for k, path in enumerate(df["image"]):
            image = read_image(path)
            rng = np.random.default_rng([int(seed), k])
            smap = edge_scales(image, canny_weak, canny_strong, canny_sigma)
            rows, cols, scales = balanced_edges(smap, rng, n_per_image)
            if len(rows) == 0:
                log.warning("no balanced edges in %s (strong or weak edges missing)", path)
                continue
            for label, sigma in enumerate(sigmas):
                rgb, feats = patch_data(blur(image, sigma), rows, cols, scales, grad_kind)
                n = len(rows)
                w.append(
                    {
                        "patches_large": rgb,
                        "scale": scales,
                        "label": np.full(n, label),
                        "source": np.full(n, k),
                        "split": np.full(n, src_split[k]),
                        "center": np.stack([rows, cols], axis=1),
                        "features": feats,
                    }
                )
            total += len(rows) * len(sigmas)
            log.info("%s: %d locations per scale -> %d patches", ids[k], len(rows) // 2, total)
        if w.n == 0:
            raise ValueError(f"no edge patches found in the images of {manifest_csv}")
        attrs: dict[str, Any] = {
            "sigmas": sigmas,
            "sources": json.dumps(ids),
            "val_sources": json.dumps([i for i, s in zip(ids, src_split, strict=True) if s]),
            "split_names": json.dumps(SPLIT_NAMES),
            "seed": int(seed),
            "n_per_image": -1 if n_per_image is None else int(n_per_image),  # -1: no cap
            "canny_weak": np.asarray(canny_weak, dtype=np.float64),
            "canny_strong": np.asarray(canny_strong, dtype=np.float64),
            "canny_sigma": float(canny_sigma),
            "grad_kind": grad_kind,
            "feature_layout": "[fD, fG, fS] x [large 25 bins, 1, small 13 bins, 1]",
            "manifest": str(manifest_csv),
        }
        h5.attrs.update(attrs)
    return Path(out_h5)


def load_patches(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    split: str | None = None,
    fields: Sequence[str] = ("patches_large", "scale", "label", "source", "features"),
) -> dict[str, np.ndarray]:
    """Read patch files into memory, optionally one split (``train`` or ``val``).

    Sources of later files are offset so they stay distinct. ``sigmas`` of every file must
    agree; the dict also holds ``sigmas``.
    """
    import h5py

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if split is not None and split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES} or None, got {split!r}")
    parts: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    sigmas = None
    offset = 0
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"patch file not found: {p}")
        with h5py.File(p, "r") as h5:
            missing = [f for f in (*fields, "split") if f not in h5]
            if missing:
                raise ValueError(f"patch file {p} lacks dataset(s) {missing}")
            s = np.asarray(h5.attrs["sigmas"], dtype=np.float64)
            if sigmas is not None and not np.allclose(s, sigmas):
                raise ValueError(f"patch file {p} has sigmas {s}, others have {sigmas}")
            sigmas = s
            sel = slice(None)
            if split is not None:
                sel = np.flatnonzero(h5["split"][:] == SPLIT_NAMES.index(split))
            for f in fields:
                a = h5[f][:][sel] if not isinstance(sel, slice) else h5[f][:]
                if f == "source":
                    a = a.astype(np.int64) + offset
                parts[f].append(a)
            offset += len(json.loads(h5.attrs["sources"]))
    out = {f: np.concatenate(v) if v else np.zeros(0) for f, v in parts.items()}
    out["sigmas"] = sigmas if sigmas is not None else SIGMAS
    return out


def class_mean_features(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    scale: int = 1,
    labels: Sequence[int] = (0, N_LABELS - 1),
) -> dict[str, dict[int, np.ndarray]]:
    """Mean ``f_D``, ``f_G``, ``f_S`` (bins of one scale) per label: the curves of Figure 3.

    Returns ``{"fD": {label: (n_bins,)}, "fG": ..., "fS": ...}`` averaged over the patches of
    ``scale`` with each label (label 0 = the sharpest, sigma 0.5; 10 = sigma 2.0).
    """
    from defocus.features.handcrafted import FEATURE_NAMES, SLOTS, check_scale

    check_scale(scale)
    d = load_patches(paths, fields=("scale", "label", "features"))
    out: dict[str, dict[int, np.ndarray]] = {}
    for b, name in enumerate(FEATURE_NAMES):
        block = d["features"][:, b * FEATURE_DIM : (b + 1) * FEATURE_DIM][:, SLOTS[scale]]
        out[name] = {}
        for lab in labels:
            sel = (d["scale"] == scale) & (d["label"] == lab)
            if not sel.any():
                raise ValueError(f"no patches of scale {scale} with label {lab} in {paths}")
            out[name][int(lab)] = block[sel].mean(axis=0)
    return out
