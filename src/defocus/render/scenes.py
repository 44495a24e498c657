"""Embedded, offline demo scenes for SYNDOF rendering: ``(image_uint8, depth_m)`` pairs.

* :func:`motorcycle_scene`: the real Middlebury 2014 "Motorcycle" scene shipped with
  scikit-image (left image and ground-truth disparity, down-sampled 4x by scikit-image),
  with depth from ``Z = baseline * f / (d + doffs)`` (Middlebury 2014 calib.txt convention).
* :func:`procedural_scene`: real photographs from ``skimage.data`` as textures on a slanted
  ground plane, a far fronto-parallel wall and a few nearer fronto-parallel cards, composited
  with occlusion by depth.
"""

from __future__ import annotations

import numpy as np

#: Calibration of the 4x down-sampled Motorcycle pair, from the docstring of
#: ``skimage.data.stereo_motorcycle`` (scikit-image 0.26): focal length 994.978 px,
#: principal point dx (= doffs) 31.086 px, baseline 193.001 mm. They are the Middlebury
#: 2014 Motorcycle-perfect calib.txt values (f = 3979.911 px, doffs = 124.343 px,
#: baseline = 193.001 mm) divided by 4 for the pixel quantities.
MOTORCYCLE_FOCAL_PX = 994.978
MOTORCYCLE_DOFFS_PX = 31.086
MOTORCYCLE_BASELINE_MM = 193.001

#: Colour / greyscale photographs in the scikit-image wheel used as textures.
TEXTURES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "immunohistochemistry",
    "coins",
    "brick",
    "grass",
    "gravel",
)


def _resize(img: np.ndarray, size_hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    import cv2

    h, w = size_hw
    if img.shape[:2] == (h, w):
        return img
    shrink = h < img.shape[0] or w < img.shape[1]
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.resize(img, (w, h), interpolation=interp)


def _fit_max_side(shape_hw, max_side: int | None) -> tuple[int, int]:
    h, w = shape_hw
    if max_side is None or max(h, w) <= max_side:
        return h, w
    if max_side < 8:
        raise ValueError(f"max_side must be >= 8 px, got {max_side}")
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def fill_invalid_nearest(depth_m: np.ndarray) -> np.ndarray:
    """Replace NaN/inf depths by the nearest valid depth (Euclidean distance transform)."""
    depth = np.asarray(depth_m, dtype=np.float64)
    bad = ~np.isfinite(depth)
    if not bad.any():
        return depth
    if bad.all():
        raise ValueError("depth map has no valid (finite) value to fill from")
    from scipy import ndimage

    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return depth[tuple(idx)]


def motorcycle_scene(max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Middlebury 2014 Motorcycle left view (741 x 500) and its metric depth.

    Invalid disparities (inf/NaN in the scikit-image array) are filled with the nearest
    valid depth. ``max_side`` down-sizes both (area for the image, nearest for depth).

    Returns
    -------
    image_uint8 : numpy.ndarray
        ``(H, W, 3)`` RGB.
    depth_m : numpy.ndarray
        ``(H, W)`` float32 metres (about 2.1-5.0 m).
    """
    from skimage import data

    from defocus.io.depth import disparity_to_depth_m

    left, _right, disp = data.stereo_motorcycle()
    depth = disparity_to_depth_m(
        disp, MOTORCYCLE_FOCAL_PX, MOTORCYCLE_BASELINE_MM, MOTORCYCLE_DOFFS_PX
    )
    depth = fill_invalid_nearest(depth)
    size = _fit_max_side(left.shape[:2], max_side)
    image = _resize(np.ascontiguousarray(left[..., :3]), size)
    depth = _resize(depth.astype(np.float32), size, nearest=True)
    return image.astype(np.uint8), depth.astype(np.float32)


def _texture(name: str, size_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of a scikit-image photograph resized to ``size_hw``, RGB uint8."""
    from skimage import data

    from defocus.io.image import to_rgb_uint8

    img = to_rgb_uint8(getattr(data, name)())
    h, w = img.shape[:2]
    # random crop of 60-100 % of each side keeps photographic content at varied scales
    ch = int(h * rng.uniform(0.6, 1.0))
    cw = int(w * rng.uniform(0.6, 1.0))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return _resize(np.ascontiguousarray(img[y : y + ch, x : x + cw]), size_hw)


def procedural_scene(
    rng: np.random.Generator,
    size_hw: tuple[int, int] = (192, 256),
    n_cards: int = 3,
    depth_range_m: tuple[float, float] = (1.0, 20.0),
    slanted_ground: bool = True,
    textures: tuple[str, ...] = TEXTURES,
) -> tuple[np.ndarray, np.ndarray]:
    """A piecewise-planar scene textured with real photographs.

    Layers, far to near: a fronto-parallel wall at the far depth; optionally a ground plane
    slanted from the wall's depth at the horizon to the near depth at the bottom row
    (depth linear in the row); then ``n_cards`` fronto-parallel rectangular cards at random
    depths, positions and sizes. Nearer surfaces occlude farther ones (z-buffer).

    Returns
    -------
    image_uint8 : numpy.ndarray
        ``(H, W, 3)`` RGB.
    depth_m : numpy.ndarray
        ``(H, W)`` float32 metres inside ``depth_range_m``.
    """
    h, w = (int(v) for v in size_hw)
    if h < 8 or w < 8:
        raise ValueError(f"size_hw must be at least (8, 8), got {size_hw}")
    near_m, far_m = (float(v) for v in depth_range_m)
    if not 0 < near_m < far_m:
        raise ValueError(f"depth_range_m must satisfy 0 < near < far, got {depth_range_m}")
    if n_cards < 0:
        raise ValueError(f"n_cards must be >= 0, got {n_cards}")
    names = list(rng.permutation(list(textures)))
    next_name = iter(names * (2 + n_cards))

    image = _texture(next(next_name), (h, w), rng)
    depth = np.full((h, w), far_m, dtype=np.float64)

    if slanted_ground:
        horizon = int(rng.uniform(0.45, 0.7) * h)
        rows = np.arange(h, dtype=np.float64)
        t = np.clip((rows - horizon) / max(h - 1 - horizon, 1), 0.0, 1.0)
        # inverse depth linear in the row, as for a real ground plane seen by a pinhole camera
        ground = 1.0 / ((1.0 - t) / far_m + t / near_m)
        ground_rows = rows > horizon
        tex = _texture(next(next_name), (h, w), rng)
        sel = np.zeros((h, w), dtype=bool)
        sel[ground_rows] = True
        depth[sel] = np.broadcast_to(ground[:, None], (h, w))[sel]
        image[sel] = tex[sel]

    for _ in range(n_cards):
        z = float(np.exp(rng.uniform(np.log(near_m), np.log(far_m))))
        ch = int(rng.uniform(0.2, 0.55) * h)
        cw = int(rng.uniform(0.15, 0.45) * w)
        y = int(rng.integers(0, h - ch + 1))
        x = int(rng.integers(0, w - cw + 1))
        tex = _texture(next(next_name), (ch, cw), rng)
        win = depth[y : y + ch, x : x + cw]
        vis = z < win
        win[vis] = z
        image[y : y + ch, x : x + cw][vis] = tex[vis]
    return np.ascontiguousarray(image, dtype=np.uint8), depth.astype(np.float32)


def demo_sources(
    n_procedural: int = 4,
    seed: int = 0,
    max_side: int | None = 256,
    size_hw: tuple[int, int] = (192, 256),
    include_motorcycle: bool = True,
) -> list[dict]:
    """The embedded demo sources as ``{"name", "image", "depth_m", "depth_scale"}`` dicts."""
    rng = np.random.default_rng(seed)
    out = []
    if include_motorcycle:
        img, depth = motorcycle_scene(max_side)
        out.append({"name": "motorcycle", "image": img, "depth_m": depth, "depth_scale": 1.0})
    for i in range(n_procedural):
        img, depth = procedural_scene(rng, size_hw=size_hw)
        out.append({"name": f"planes{i:02d}", "image": img, "depth_m": depth, "depth_scale": 1.0})
    return out
