"""Run a method over a manifest split (the predict rule) or over a user's images (the CLI)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from defocus.io.image import map_to_uint8, read_image, write_image
from defocus.io.manifest import read_manifest
from defocus.io.predictions import PredictionWriter
from defocus.methods.base import Method, minmax_normalise
from defocus.methods.registry import get_method

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def build_method(
    spec: str, params: dict[str, Any] | None, checkpoint: str | os.PathLike | None, device: str
) -> Method:
    """Instantiate ``spec`` with ``params``, set its device and load its checkpoint."""
    from defocus.config import resolve_device

    method = get_method(spec, params)
    # only learned methods use torch: classic ones skip its ~3 s import
    method.device = resolve_device(device) if method.learned else "cpu"
    method.load(Path(checkpoint) if checkpoint else None)
    return method


def run_one(method: Method, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
    """``(blur_map, raw_or_None, seconds)`` for one RGB uint8 image; checks the map's size."""
    t0 = time.perf_counter()
    if method.has_raw:
        raw = np.asarray(method.predict_raw(image), dtype=np.float32)
        blur = minmax_normalise(raw)
    else:
        raw = None
        blur = np.asarray(method.predict(image), dtype=np.float32)
    seconds = time.perf_counter() - t0
    if blur.shape != image.shape[:2]:
        raise ValueError(
            f"method {method.name!r} returned a map of shape {blur.shape} "
            f"for an image of shape {image.shape[:2]}"
        )
    return blur, raw, seconds


def predict_manifest(
    spec: str,
    params: dict[str, Any] | None,
    manifest_path: str | os.PathLike,
    out_h5: str | os.PathLike,
    split: str = "test",
    device: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> Path:
    """Predict every image of ``split`` and write the prediction file atomically."""
    rows = read_manifest(manifest_path, split=split)
    if rows.empty:
        raise ValueError(f"{manifest_path} has no images in split {split!r}")
    method = build_method(spec, params, checkpoint, device)
    dataset = dataset or Path(manifest_path).parent.name
    config = {"method": spec, "params": method.params, "checkpoint": str(checkpoint or "")}
    with PredictionWriter(
        out_h5, spec, dataset, config=config, device=method.device, raw_unit=method.raw_unit
    ) as w:
        for row in tqdm(rows.itertuples(), total=len(rows), desc=f"{spec} on {dataset}"):
            image = read_image(row.image)
            blur, raw, seconds = run_one(method, image)
            w.add(row.id, blur, seconds, raw=raw)
    log.info("wrote %s (%d images)", out_h5, len(rows))
    return Path(out_h5)


def collect_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files and folders (non-recursive) to a sorted list of image files."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such image or folder: {p}")
    if not out:
        raise FileNotFoundError("no images found in the given paths")
    return out


def predict_files(
    spec: str,
    images: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    params: dict[str, Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
    raw: bool = False,
) -> list[Path]:
    """``defocus predict``: write ``out_dir/<stem>.png`` (255 = blurred) per image.

    With ``raw``, the physical map (or the blur map for methods without one) is saved as
    ``<stem>.npy`` too.
    """
    method = build_method(spec, params, checkpoint, device)
    out_dir = Path(out_dir)
    written = []
    for path in tqdm(collect_images(images), desc=spec):
        image = read_image(path)
        blur, raw_map, _ = run_one(method, image)
        target = out_dir / f"{path.stem}.png"
        write_image(target, map_to_uint8(blur))
        if raw:
            np.save(out_dir / f"{path.stem}.npy", raw_map if raw_map is not None else blur)
        written.append(target)
    return written
