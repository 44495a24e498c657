"""Benchmark images built from what scikit-image ships (no side effects on import)."""

from __future__ import annotations

import cv2
import numpy as np


def half_blurred_astronaut(size_wh: tuple[int, int] = (640, 427), sigma: float = 2.5) -> np.ndarray:
    """scikit-image's astronaut resized to ``size_wh`` (a CUHK-sized image by default), its
    right half blurred with a Gaussian of ``sigma``."""
    from skimage import data

    img = cv2.resize(data.astronaut(), size_wh, interpolation=cv2.INTER_AREA)
    out = img.copy()
    half = size_wh[0] // 2
    out[:, half:] = cv2.GaussianBlur(img, (0, 0), sigma)[:, half:]
    return out
