"""What every reader shares: the layout error and polarity warning, file listing, size
checks, and the GT conversion to the manifest's binary mask (uint8 {0, 255}, 255 =
blurred) with its polarity checks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from defocus.io.atomic import atomic_path
from defocus.io.image import read_gray, read_image, write_image

log = logging.getLogger(__name__)


IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
POLARITIES = ("white_blurred", "white_sharp")


class DatasetLayoutError(ValueError):
    """A dataset folder does not have the expected files (missing GT, size mismatch, ...)."""


class PolarityWarning(UserWarning):
    """A GT mask or a whole dataset looks as if its declared polarity were flipped."""


def _files(root: Path, exts: Iterable[str]) -> list[Path]:
    """All files under ``root`` whose extension (case-insensitive) is in ``exts``, sorted."""
    exts = {e.lower() for e in exts}
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in exts and p.is_file() and not p.name.startswith(".")
    )


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(arr, np.float32))


def _check_same_size(img_path: Path, img_shape, other_path: Path, other_shape) -> None:
    if tuple(img_shape[:2]) != tuple(other_shape[:2]):
        raise DatasetLayoutError(
            f"size mismatch: image {img_path} is {img_shape[1]}x{img_shape[0]} (WxH) but "
            f"{other_path} is {other_shape[1]}x{other_shape[0]}"
        )


def to_blurred_mask(gt: np.ndarray, polarity: str) -> np.ndarray:
    """Binarise a GT mask and return it as uint8 {0, 255} with **255 = blurred**.

    Parameters
    ----------
    gt : numpy.ndarray
        HxW mask of any integer/bool/float dtype; values above half the dtype's range (or
        above 0.5 for floats in [0, 1]) are "white".
    polarity : {"white_blurred", "white_sharp"}
        What white means in the source.
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    gt = np.asarray(gt)
    if gt.ndim == 3:
        gt = gt[..., 0]
    if gt.dtype == bool:
        white = gt
    elif np.issubdtype(gt.dtype, np.integer):
        white = gt > (np.iinfo(gt.dtype).max // 2)
    else:
        white = gt > 0.5
    blurred = white if polarity == "white_blurred" else ~white
    return np.where(blurred, 255, 0).astype(np.uint8)


def check_polarity(mask: np.ndarray, name: str = "") -> float:
    """Blurred fraction of a normalised mask (255 = blurred); warns when it is all one class.

    A mask that is entirely blurred or entirely sharp is legal (CUHK has a few) but is also
    what a wrong threshold or a wrong file gives, so it is reported as a
    :class:`PolarityWarning`.
    """
    frac = float(np.mean(np.asarray(mask) > 127))
    if frac in (0.0, 1.0):
        warnings.warn(
            f"GT mask {name or '(unnamed)'} is entirely {'blurred' if frac else 'sharp'}",
            PolarityWarning,
            stacklevel=2,
        )
    return frac


def check_dataset_polarity(fractions: Iterable[float], name: str, polarity: str) -> float:
    """Mean blurred fraction over a dataset; warns when it is below 0.5.

    In CUHK and DUT the blurred background is the large area of most images, so a mean
    blurred fraction < 0.5 after conversion suggests the declared polarity is flipped
    (DATASETS.md section 2 asks for this check on DUT's first download).
    """
    fr = np.asarray(list(fractions), np.float64)
    if fr.size == 0:
        return float("nan")
    mean = float(fr.mean())
    if mean < 0.5:
        warnings.warn(
            f"dataset {name}: with declared GT polarity {polarity!r} the mean blurred fraction "
            f"is {mean:.3f} < 0.5, yet backgrounds are mostly blurred in defocus datasets; the "
            "polarity may be flipped (set polarity_override / datasets."
            f"{name}.polarity to the other value if a look at a mask confirms it)",
            PolarityWarning,
            stacklevel=2,
        )
    return mean


def _mask_row(
    id_: str,
    split: str,
    img_path: Path,
    gt_path: Path,
    out_dir: Path,
    polarity: str,
    fractions: list[float],
) -> dict:
    """Convert one GT mask into ``out_dir/gt/{id}.png`` after checking sizes."""
    img = read_image(img_path)
    gt = read_gray(gt_path)
    _check_same_size(img_path, img.shape, gt_path, gt.shape)
    mask = to_blurred_mask(gt, polarity)
    fractions.append(check_polarity(mask, str(gt_path)))
    out = out_dir / "gt" / f"{id_}.png"
    write_image(out, mask)
    return {"id": id_, "split": split, "image": str(img_path.resolve()), "gt": str(out)}
