"""Training data of the ConvNet (step 1 of :mod:`defocus.methods.zeng`): grey patches at the
SLIC superpixel centroids of each training image, labelled sharp or blurred from the
binary GT (:func:`superpixel_patches`, over manifests :func:`manifest_patches`), and their
random flips and rotations during training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from defocus.methods.base import MethodError, check_image

#: class indices of the ConvNet's output
SHARP, BLURRED = 0, 1


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
