"""Embedded demo sources: real photographs that the scikit-image wheel ships.

No network and no committed files: ``skimage.data`` loads them from inside the installed
package. They stand in for the ILSVRC "sharp images" of Park et al. (CVPR'17, Sec. 5) and
serve as textures of the procedural SYNDOF scenes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from defocus.io.image import to_rgb_uint8, write_image
from defocus.io.manifest import write_manifest


def resize_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink (INTER_AREA) so the longer side is at most ``max_side``; never enlarges."""
    import cv2

    if max_side is None:
        return image
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return image
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def skimage_photo(name: str, max_side: int | None = None) -> np.ndarray:
    """A ``skimage.data`` image by name as RGB uint8, shrunk to ``max_side``."""
    from skimage import data

    loader = getattr(data, name, None)
    if loader is None or not callable(loader):
        raise ValueError(f"skimage.data has no image {name!r}")
    img = loader()
    if isinstance(img, tuple):  # e.g. stereo_motorcycle() returns (left, right, disp)
        img = img[0]
    return resize_max_side(to_rgb_uint8(img), max_side)


def build_demo_sharp(photos: list[str], max_side: int | None, out_dir: str | os.PathLike) -> Path:
    """Write the photographs to ``out_dir/image/`` and a manifest (split ``train``, no GT)."""
    out_dir = Path(out_dir).resolve()
    rows = []
    for name in photos:
        path = out_dir / "image" / f"{name}.png"
        write_image(path, skimage_photo(name, max_side))
        rows.append({"id": name, "split": "train", "image": path, "gt": ""})
    target = out_dir / "manifest.csv"
    write_manifest(rows, target)
    return target
