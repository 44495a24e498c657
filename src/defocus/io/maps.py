"""Reading released result maps (BTBNet, CENet, DeFusionNet, ... folders) as float blur maps.

Reading and converting
----------------------
8-bit maps are divided by 255, 16-bit by 65535, float TIFFs must lie in [0, 1]. Colour
maps whose channels are equal give that channel; otherwise luminance
``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, as MATLAB ``rgb2gray`` and OpenCV
``COLOR_BGR2GRAY``); an alpha channel is dropped. ``polarity="white_sharp"`` maps are
inverted (``1 - map``) so that 1 = blurred, the project's convention.

Maps whose size differs from the GT mask are resized to it with bilinear interpolation by
default (``cv2.INTER_LINEAR``, half-pixel centres). Bilinear is the choice because a blur
map is a continuous score: every output value is a convex combination of input values, so
the range [0, 1] and the ordering of flat regions are kept (bicubic and Lanczos overshoot
at edges and must be clipped), it does not make the blocky edges of nearest-neighbour,
and it is OpenCV's ``cv2.resize`` default, so a user resizing by hand most likely gets the
same values. ``nearest``, ``bicubic`` (clipped to [0, 1]) and ``area`` (better for large
downscales: bilinear samples only 2x2 pixels and aliases) are available.

Why not :func:`defocus.io.image.read_gray`
------------------------------------------
``read_gray`` reads *masks* (GT, binary by declaration): it rejects colour images, takes
the mean of near-equal channels and scales a 0/1 mask to 0/255. A result map is a
continuous score, so this reader keeps its values as stored: a colour map is converted
with the one grey policy above (BT.601 luma, never "the first channel"), a 0/1 map is
kept (:func:`defocus.external.import_maps` warns about it instead of rescaling), float
TIFFs are accepted, and every error is an :class:`ExternalMapsError` naming the file.

numpy and OpenCV are imported inside the functions, so importing this module is instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: file extensions read as maps (matched case-insensitively)
MAP_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
POLARITIES = ("white_blurred", "white_sharp")
#: name -> OpenCV interpolation flag (see the module docstring for the default)
INTERPOLATIONS = {"bilinear": 1, "nearest": 0, "bicubic": 2, "area": 3}


class ExternalMapsError(ValueError):
    """A folder of released maps cannot be scored (missing, unreadable or ambiguous maps)."""


def read_map_file(path: str | os.PathLike) -> np.ndarray:
    """Read one released map as float32 (H, W) in [0, 1] (file polarity, no inversion).

    uint8 / 255, uint16 / 65535, float in [0, 1] kept; colour -> the channel when all are
    equal, else BT.601 luminance; alpha dropped.

    Raises
    ------
    ExternalMapsError
        Naming the file when it cannot be decoded or has an unsupported dtype or range.
    """
    return decode_map(Path(path))[0]


def decode_map(path: Path, invert: bool = False) -> tuple[np.ndarray, np.dtype]:
    """The map as float32 in [0, 1] (``1 - map`` with ``invert``) and the file's dtype.

    Integer maps are inverted as integers (``255 - k``), so an inverted 8-bit value is
    exactly ``np.float32((255 - k) / 255)``, on a threshold of the k/255 sweep.
    """
    import cv2
    import numpy as np

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ExternalMapsError(f"cannot read map file {path}: {e}") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ExternalMapsError(f"cannot decode map file (corrupt or unsupported): {path}")
    dtype = img.dtype
    if img.ndim == 3:
        c = img.shape[2]
        if c in (2, 4):
            img = img[..., : c - 1]  # drop alpha
        if img.shape[2] == 1:
            img = img[..., 0]
        else:
            b, g, r = img[..., 0], img[..., 1], img[..., 2]  # OpenCV decodes colour as BGR
            if np.array_equal(b, g) and np.array_equal(g, r):
                img = b
            else:  # ITU-R BT.601 luma, as MATLAB rgb2gray / cv2.COLOR_BGR2GRAY
                f = img.astype(np.float64)
                img = (0.299 * f[..., 2] + 0.587 * f[..., 1] + 0.114 * f[..., 0]).astype(np.float32)
    if img.ndim != 2:
        raise ExternalMapsError(f"{path}: expected a greyscale or colour map, got {img.shape}")
    if dtype in (np.uint8, np.uint16):
        top = 255.0 if dtype == np.uint8 else 65535.0
        img = img.astype(np.float32)  # integers, or luma in [0, top]
        return _scaled(top - img if invert else img, top, path), dtype
    if np.issubdtype(dtype, np.floating):
        m = _scaled(img, None, path)
        return (np.float32(1) - m if invert else m), dtype
    raise ExternalMapsError(
        f"{path}: map dtype {dtype} not understood; expected 8- or 16-bit, or float in [0, 1]"
    )


def _scaled(img: np.ndarray, scale: float | None, path: Path) -> np.ndarray:
    import numpy as np

    if scale is None:  # float data must already be in [0, 1]
        m = img.astype(np.float32)
        if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise ExternalMapsError(
                f"{path}: a float map must be finite and in [0, 1], "
                f"got range [{np.nanmin(m):.4g}, {np.nanmax(m):.4g}]"
            )
        return m
    # float32(k) / float32(255) is the correctly rounded float32 of k/255: an 8-bit value k
    # lies exactly on the threshold t_k of the k/255 sweep
    return np.asarray(img, np.float32) / np.float32(scale)


def resize_map(m: np.ndarray, shape: tuple[int, int], interpolation: str = "bilinear"):
    """Resize a float map to ``shape`` (H, W); values clipped to [0, 1]."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"unknown interpolation {interpolation!r}; expected one of {sorted(INTERPOLATIONS)}"
        )
    import cv2
    import numpy as np

    h, w = int(shape[0]), int(shape[1])
    out = cv2.resize(m, (w, h), interpolation=INTERPOLATIONS[interpolation])
    return np.clip(out, 0.0, 1.0).astype(np.float32)
