"""RTF (DATASETS.md section 4): ``blurMap`` ground truth of ``.mat`` files converted to
Gaussian sigma with DMENet's table (:func:`rtf_to_sigma`), and a binary mask from it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from defocus.datasets.readers.common import (
    IMAGE_EXTS,
    DatasetLayoutError,
    _check_same_size,
    _files,
    _save_npy,
    check_polarity,
)
from defocus.io.image import read_image, write_image

log = logging.getLogger(__name__)


def _rtf_lut(conversion) -> np.ndarray | None:
    """Nx2 look-up table (col 0 = Gaussian sigma, col 1 = RTF value) or None."""
    if conversion is None:
        return None
    if isinstance(conversion, str | os.PathLike):
        from scipy.io import loadmat

        mat = loadmat(conversion)
        if "convertion" not in mat:  # DMENet's spelling (evaluation/RTF/convertion.mat)
            raise DatasetLayoutError(f"{conversion}: no variable 'convertion'")
        conversion = mat["convertion"]
    lut = np.asarray(conversion, np.float64)
    if lut.ndim != 2 or lut.shape[1] < 2:
        raise DatasetLayoutError(f"RTF conversion table must be Nx2, got shape {lut.shape}")
    return lut


def rtf_to_sigma(blur_map: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map RTF ``blurMap`` values to Gaussian sigma by nearest match in ``lut``.

    As DMENet ``evaluation/RTF/quantitative_RTF.m``: column 2 holds RTF values, column 1 the
    Gaussian sigma (DATASETS.md section 4).
    """
    rtf_vals = lut[:, 1]
    order = np.argsort(rtf_vals)
    sorted_vals = rtf_vals[order]
    b = np.asarray(blur_map, np.float64)
    idx = np.clip(np.searchsorted(sorted_vals, b), 1, len(sorted_vals) - 1)
    left, right = sorted_vals[idx - 1], sorted_vals[idx]
    idx = np.where(np.abs(b - left) <= np.abs(right - b), idx - 1, idx)
    return lut[order[idx], 0].astype(np.float32)


def _read_rtf(
    root: Path,
    out_dir: Path,
    polarity: str,
    noise_level: str = "0",
    threshold: float = 0.5,
    conversion=None,
    image_root: str | os.PathLike | None = None,
    **_,
) -> tuple[list[dict], list[float]]:
    from scipy.io import loadmat

    mats = [p for p in _files(root, (".mat",)) if p.name != "convertion.mat"]
    layered = [p for p in mats if p.parent.name == noise_level and p.parent.parent.name == "gt"]
    if layered:
        mats = layered
    elif any(p.parent.parent.name == "gt" for p in mats):
        raise DatasetLayoutError(f"RTF: no gt/{noise_level}/ folder under {root}")
    if not mats:
        raise DatasetLayoutError(f"RTF: no .mat ground truth under {root}")
    lut = _rtf_lut(conversion)
    if lut is None:
        log.warning(
            "RTF: no conversion table given; defocus/*.npy hold the raw blurMap values (RTF PSF "
            "scale), not Gaussian sigma. Pass conversion=<DMENet evaluation/RTF/convertion.mat>."
        )
    img_root = Path(image_root) if image_root else root
    images: dict[str, list[Path]] = {}
    for p in _files(img_root, IMAGE_EXTS):
        if "out" in {q.lower() for q in p.relative_to(img_root).parts[:-1]}:
            continue  # method results (RTF/out/<method>/...) are not inputs
        images.setdefault(p.stem.lower(), []).append(p)
    rows, fractions = [], []
    for m in mats:
        data = loadmat(m)
        if "blurMap" not in data:
            names = sorted(k for k in data if not k.startswith("__"))
            raise DatasetLayoutError(f"RTF: {m} has no variable 'blurMap' (has {names})")
        blur = np.asarray(data["blurMap"], np.float64)
        sigma = rtf_to_sigma(blur, lut) if lut is not None else blur.astype(np.float32)
        cands = images.get(m.stem.lower(), [])
        if not cands:
            raise DatasetLayoutError(
                f"RTF: no input image named {m.stem}.* for GT {m} under {img_root}; the "
                "DMENet GT zip has no images: unpack the author's Defocus_Blur_Dataset.zip and "
                "pass image_root"
            )
        if len(cands) > 1:  # e.g. one input per noise level: take the one of noise_level
            at_level = [c for c in cands if noise_level in c.relative_to(img_root).parts[:-1]]
            if len(at_level) != 1:
                raise DatasetLayoutError(
                    f"RTF: ambiguous input image for GT {m}: {[str(c) for c in cands]}; "
                    "pass image_root pointing at one noise level's images"
                )
            cands = at_level
        img_path = cands[0]
        img = read_image(img_path)
        _check_same_size(img_path, img.shape, m, sigma.shape)
        id_ = m.stem
        defocus = out_dir / "defocus" / f"{id_}.npy"
        _save_npy(defocus, sigma)
        # Binary GT for binary metrics: blurred where sigma > threshold (ours, documented in
        # build_manifest; not from the RTF or DMENet papers).
        mask = np.where(sigma > threshold, 255, 0).astype(np.uint8)
        fractions.append(check_polarity(mask, str(m)))
        gt = out_dir / "gt" / f"{id_}.png"
        write_image(gt, mask)
        rows.append(
            {
                "id": id_,
                "split": "test",
                "image": str(img_path.resolve()),
                "gt": str(gt),
                "defocus": str(defocus),
            }
        )
    return rows, fractions
