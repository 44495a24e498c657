"""Image reading and writing with clear errors.

Every reader returns RGB ``uint8`` ``(H, W, 3)``: greyscale is replicated, an alpha
channel is composited on white, 16-bit images are scaled to 8 bits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from defocus.io.atomic import atomic_path


class ImageError(ValueError):
    """An image file is missing, unreadable or has an unexpected shape."""


def _cv2():
    import cv2

    return cv2


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """Convert a greyscale / RGB / RGBA array of any integer or float dtype to RGB uint8.

    Floats are taken to be in ``[0, 1]``; ``uint16`` is scaled by ``255/65535``; RGBA is
    composited on a white background (the usual convention for photographs with alpha).
    """
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {img.shape}")
    if img.dtype == np.uint8:
        f = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        f = img.astype(np.float32) / 65535.0
    elif np.issubdtype(img.dtype, np.floating):
        f = np.clip(img.astype(np.float32), 0.0, 1.0)
    elif img.dtype == bool:
        f = img.astype(np.float32)
    else:
        f = np.clip(img.astype(np.float32), 0, 255) / 255.0
    c = f.shape[2]
    if c in (2, 4):
        alpha = f[..., -1:]
        f = f[..., :-1] * alpha + (1.0 - alpha)
        c -= 1
    if c == 1:
        f = np.repeat(f, 3, axis=2)
    return np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8)


def _decode(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file as stored (OpenCV channel order, any depth); clear errors."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    cv2 = _cv2()
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageError(f"cannot decode image (corrupt or unsupported format): {path}")
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 ``(H, W, 3)``.

    Raises :class:`ImageError` naming the file when it is missing or cannot be decoded.
    """
    img = _decode(path)
    if img.ndim == 3:
        if img.shape[2] == 3:
            img = img[..., ::-1]
        elif img.shape[2] == 4:
            img = img[..., [2, 1, 0, 3]]
    return to_rgb_uint8(img)


#: largest difference (grey levels of 255) between the channels of a colour-stored mask that
#: is still read as grey: JPEG compression of a black/white mask stays well below it
MASK_CHANNEL_TOLERANCE = 16


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """Read a mask (GT or result map) as one channel, keeping its dtype (uint8 or uint16).

    The declared rules for how masks are stored:

    * **alpha-only**: an image with an alpha channel whose colour channels are constant and
      whose alpha varies stores the mask in alpha, which is returned;
    * **colour**: channels that agree within :data:`MASK_CHANNEL_TOLERANCE` levels (of 255;
      a grey mask saved as RGB or JPEG) give their mean; other colour images are rejected
      with :class:`ImageError` (a colour mask has no declared meaning);
    * **0/1**: an integer mask whose values are only 0 and 1 is scaled to 0 / dtype maximum
      (255 for uint8), so "1 = white" is not read as black.
    """
    img = _decode(path)
    if img.ndim == 3:
        c = img.shape[2]
        colour = img[..., : c - 1] if c in (2, 4) else img
        if c in (2, 4):
            alpha = img[..., -1]
            if colour.min() == colour.max() and alpha.min() != alpha.max():
                colour = alpha[..., None]
        if colour.shape[2] > 1:
            lo = colour.min(axis=2).astype(np.int64)
            hi = colour.max(axis=2).astype(np.int64)
            full = 255 if colour.dtype == np.uint8 else np.iinfo(colour.dtype).max
            spread = int((hi - lo).max()) * 255 // max(full, 1)
            if spread > MASK_CHANNEL_TOLERANCE:
                raise ImageError(
                    f"mask {path} is a colour image (its channels differ by up to {spread} "
                    f"levels of 255); save it as a greyscale mask (white / black)"
                )
            img = np.rint(colour.mean(axis=2)).astype(colour.dtype)
        else:
            img = colour[..., 0]
    if np.issubdtype(img.dtype, np.integer) and img.size and int(img.max()) == 1:
        img = (img * np.iinfo(img.dtype).max).astype(img.dtype)
    return img


def write_image(path: str | os.PathLike, img: np.ndarray) -> None:
    """Atomically write an RGB (H, W, 3) or greyscale (H, W) uint8/uint16 image."""
    cv2 = _cv2()
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[..., ::-1]
    img = np.ascontiguousarray(img)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise ImageError(
                f"OpenCV could not write {path} (dtype {img.dtype}, shape {img.shape})"
            )


def map_to_uint8(blur_map: np.ndarray) -> np.ndarray:
    """A [0, 1] blur map as uint8 (255 = blurred), rounded."""
    return np.clip(np.rint(np.asarray(blur_map, np.float32) * 255.0), 0, 255).astype(np.uint8)
