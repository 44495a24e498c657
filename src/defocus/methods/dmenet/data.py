"""DMENet training data: rows of each role's manifests, their images and labels, and the
release's augmentation (``utils.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def augment(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    crop: int,
    max_side: int,
    scale_label: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize if needed, random ``crop x crop``, random vertical flip, random rot90.

    Release ``utils.crop_pair_with_different_shape_images`` / ``random_crop``: an image whose
    short side is <= ``crop`` is resized (bilinear) so that it becomes ``crop`` (+1 px), one whose
    short side exceeds ``max_side`` (800) is resized down to it; then a random crop, a flip of
    the row axis with probability 1/2 (``flip_axis(axis=0)``) and a rotation by k x 90 degrees,
    k uniform in {1, 2, 3, 4} (4 = none). ``label`` (HxW float) follows the image.

    ``scale_label``: the label is a length in pixels (sigma or CoC) and is multiplied by the
    resize factor (geometric mean of the two axes' factors), so that a full-resolution render
    shrunk to ``max_side`` keeps labels in the pixels of the image the network sees. Binary
    masks are not scaled. The release never scales (its labels keep pre-resize values).
    """
    import cv2

    h, w = image.shape[:2]
    short = min(h, w)
    ratio = crop / short if short <= crop else (max_side / short if short > max_side else None)
    if ratio is not None:
        size = (int(math.floor(w * ratio)) + 1, int(math.floor(h * ratio)) + 1)
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        if label is not None:
            label = cv2.resize(label, size, interpolation=cv2.INTER_LINEAR)
            if scale_label:
                factor = math.sqrt(size[0] / w * size[1] / h)
                label = label * np.float32(factor)
        h, w = image.shape[:2]
    y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    image = image[y0 : y0 + crop, x0 : x0 + crop]
    label = None if label is None else label[y0 : y0 + crop, x0 : x0 + crop]
    if rng.random() < 0.5:
        image = image[::-1]
        label = None if label is None else label[::-1]
    k = int(rng.integers(1, 5)) % 4
    image = np.ascontiguousarray(np.rot90(image, k))
    label = None if label is None else np.ascontiguousarray(np.rot90(label, k))
    return image, label


def _load_role(role: str, manifests: list[Path], target: str = "sigma") -> list[dict[str, str]]:
    """Rows of the ``train`` split usable for ``role`` (paths only; images are read lazily).

    ``target`` ("sigma" or "coc") names the label column of the synthetic role: ``defocus``
    (sigma .npy) or ``coc`` (CoC .npy in the release's units, :mod:`dmenet_release`).
    """
    from defocus.io.manifest import read_manifest

    col = "coc" if target == "coc" else "defocus"
    rows = []
    for m in manifests:
        df = read_manifest(m, split="train")
        if role == "synthetic":
            if col not in df.columns:
                what = "sigma .npy" if col == "defocus" else "CoC .npy of the released SYNDOF"
                raise ValueError(
                    f"role 'synthetic' with target={target!r} needs manifests with a {col!r} "
                    f"({what}) column; {m} has {list(df.columns)}"
                )
            df = df[df[col] != ""]
        elif role == "binary":
            df = df[df["gt"] != ""]
        rows += df.to_dict("records")
    if not rows:
        raise ValueError(
            f"no usable 'train' rows for role {role!r} in {[str(m) for m in manifests]}"
        )
    return rows


def _read(row: dict[str, str], role: str, sigma_max: float, target: str = "sigma", max_coc=15.0):
    from defocus.io.image import read_gray, read_image

    image = read_image(row["image"])
    label = None
    if role == "synthetic" and target == "coc":
        # target CoC / max_coc (release utils.get_images, mode 'DEPTH', lines 38-43)
        label = np.load(row["coc"]).astype(np.float32) / np.float32(max_coc)
    elif role == "synthetic":
        # target in [0, 1]: sigma / sigma_max (release utils.get_images, mode 'DEPTH')
        label = np.load(row["defocus"]).astype(np.float32) / np.float32(sigma_max)
    elif role == "binary":
        g = read_gray(row["gt"])
        top = np.iinfo(g.dtype).max if np.issubdtype(g.dtype, np.integer) else 1.0
        label = (g > top / 2).astype(np.float32)  # manifest contract: 255 = blurred
    if label is not None and label.shape != image.shape[:2]:
        raise ValueError(f"{role}: label of {row['image']} has shape {label.shape}")
    return image, label
