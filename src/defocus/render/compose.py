"""Composition of a SYNDOF dataset as the paper's: which source frames, how many renders.

Lee et al. (CVPR'19, Sec. 3) render 8,231 images from 2,006 source images of MPI Sintel,
SYNTHIA and Middlebury 2014, keeping only source images that are not similar to each other;
the paper gives neither the similarity measure nor its threshold. The authors' generator
(github codeslake/SYNDOF, ``generate_blur_by_depth.m`` l. 28-36) draws sources at random
until it has its target count; its Middlebury samples (``data/synthetic_datasets/depth/
middleburry/2014/Adirondack-perfect/disp0.png``, 720 x 497 uint16, 162-307, no zero) are
quarter-resolution depth in whole centimetres (x10 = mm, ``generate_blur_by_depth.m``
l. 46-50) with no hole left.

Choices made here, each a function:

* :func:`select_dissimilar`: video frames of one sequence (the name without its trailing
  frame number) are walked in order and a frame is kept when the mean absolute difference
  of its 32 x 32 grey thumbnail (``cv2.INTER_AREA``, values in [0, 1]) from the last kept
  frame is at least ``min_difference``. Consecutive frames differ by small camera and
  object motion, which the thumbnail sees as a small global change, while its averaging
  ignores noise and texture; single images (Middlebury scenes) are always kept.
* :func:`difference_for_count`: the paper states the number of sources (2,006), not a
  threshold, so the threshold is the smallest one that keeps at most that many frames
  (bisection on the kept count).
* :func:`renders_per_source`: ``n_renders`` renders (8,231) are spread evenly over the kept
  sources, the remainder going one each to a seeded random subset.
* :func:`middlebury_as_generator`: quarter resolution (area for the image, nearest for
  depth), holes filled by Laplace interpolation (MATLAB ``regionfill``, the fill the
  generator's own code uses; how its samples were filled is not documented) and depth
  rounded to whole centimetres, as the generator's sample PNG stores it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: Side (px) of the grey thumbnails compared by :func:`select_dissimilar`.
THUMB_PX = 32


def sequence_key(name: str) -> str:
    """The sequence a frame belongs to: its name without the trailing frame number."""
    key = re.sub(r"[_\-.]?\d+$", "", str(name))
    return key or str(name)


def thumbnail(image_uint8: np.ndarray, size: int = THUMB_PX) -> np.ndarray:
    """``(size, size)`` float32 grey thumbnail in [0, 1] (area interpolation)."""
    import cv2

    img = np.asarray(image_uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def select_dissimilar(
    names: Sequence[str], thumbs: Sequence[np.ndarray], min_difference: float
) -> list[int]:
    """Indices of the frames kept (in input order), see the module notes."""
    if len(names) != len(thumbs):
        raise ValueError(f"{len(names)} names but {len(thumbs)} thumbnails")
    if not np.isfinite(min_difference) or min_difference < 0:
        raise ValueError(f"min_difference must be >= 0, got {min_difference!r}")
    last: dict[str, np.ndarray] = {}
    kept = []
    for i in sorted(range(len(names)), key=lambda j: str(names[j])):
        key = sequence_key(names[i])
        t = np.asarray(thumbs[i], dtype=np.float32)
        if key in last and float(np.abs(t - last[key]).mean()) < min_difference:
            continue
        last[key] = t
        kept.append(i)
    return sorted(kept)


def difference_for_count(
    names: Sequence[str], thumbs: Sequence[np.ndarray], n_sources: int, iterations: int = 40
) -> float:
    """Smallest ``min_difference`` (to 1e-12 of the range) keeping at most ``n_sources``."""
    if n_sources < 1:
        raise ValueError(f"n_sources must be >= 1, got {n_sources}")
    if len(select_dissimilar(names, thumbs, 0.0)) <= n_sources:
        return 0.0
    lo, hi = 0.0, 1.0 + 1e-6  # thumbnails are in [0, 1]: above 1 only the first frames stay
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if len(select_dissimilar(names, thumbs, mid)) <= n_sources:
            hi = mid
        else:
            lo = mid
    return hi


def renders_per_source(n_sources: int, n_renders: int, seed: int) -> np.ndarray:
    """Number of renders of each source, ``n_renders`` in all, spread evenly (seeded)."""
    if n_sources < 1 or n_renders < n_sources:
        raise ValueError(
            f"need n_renders >= number of sources >= 1, got {n_renders} renders for "
            f"{n_sources} sources"
        )
    counts = np.full(n_sources, n_renders // n_sources, dtype=np.int64)
    extra = np.random.default_rng([seed, 8231]).permutation(n_sources)[: n_renders % n_sources]
    counts[extra] += 1
    return counts


def middlebury_as_generator(
    image_uint8: np.ndarray, depth_m: np.ndarray, scale: float = 0.25, step_m: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """A Middlebury view and its depth prepared as the generator's samples (module notes).

    ``depth_m`` may hold NaN/inf where the disparity is unknown. Returns the uint8 image and
    the finite float32 depth at ``scale`` (0.25: quarter resolution), depth rounded to
    ``step_m`` (0.01 m; 0 keeps it).
    """
    import cv2

    from defocus.render.layered import harmonic_fill

    image = np.asarray(image_uint8)
    depth = np.asarray(depth_m, dtype=np.float64)
    if depth.shape != image.shape[:2]:
        raise ValueError(f"depth shape {depth.shape} differs from image shape {image.shape[:2]}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    h, w = image.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    if size != (w, h):
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
    hole = ~np.isfinite(depth)
    if hole.all():
        raise ValueError("depth has no finite value to fill the holes from")
    if hole.any():
        known = np.where(hole, 0.0, depth)[..., None]
        depth = depth.copy()
        depth[hole] = harmonic_fill(known, hole)[:, 0]
    if step_m > 0:
        depth = np.maximum(np.round(depth / step_m), 1.0) * step_m
    return image, depth.astype(np.float32)
