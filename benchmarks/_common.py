"""Shared pieces of the benchmark scripts (run as ``python benchmarks/<script>.py``).

Import this module *before* numpy: it pins every BLAS / OpenMP pool to one thread, so the
timings measure one CPU core.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def half_blurred_astronaut(size_wh: tuple[int, int] = (640, 427), sigma: float = 2.5) -> np.ndarray:
    """scikit-image's astronaut resized to ``size_wh`` (a CUHK-sized image by default), its
    right half blurred with a Gaussian of ``sigma``."""
    from skimage import data

    img = cv2.resize(data.astronaut(), size_wh, interpolation=cv2.INTER_AREA)
    out = img.copy()
    half = size_wh[0] // 2
    out[:, half:] = cv2.GaussianBlur(img, (0, 0), sigma)[:, half:]
    return out
