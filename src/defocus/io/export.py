"""Exporting a prediction file as a folder of images (``results/exports/{method}/{dataset}/``).

:func:`export_maps` writes each map of a prediction file (:mod:`defocus.io.predictions`) as
``<id>.<fmt>``, uint8 with 255 = blurred, the layout of released result folders; the demo
re-imports one with :func:`defocus.external.import_maps` as an external row.

h5py and numpy are imported inside the function, so importing this module is instant.
"""

from __future__ import annotations

import os
from pathlib import Path

from defocus.io.maps import ExternalMapsError

#: export rounding: ``nearest`` = rint(255 map); ``floor`` = the threshold index of the
#: k/255 sweep (:func:`defocus.evaluate.metrics.quantise`)
ROUNDINGS = ("nearest", "floor")
EXPORT_FORMATS = ("png", "bmp", "tif")


def export_maps(
    pred_h5: str | os.PathLike,
    out_dir: str | os.PathLike,
    fmt: str = "png",
    rounding: str = "nearest",
) -> list[Path]:
    """Write every map of a prediction file as ``out_dir/<id>.<fmt>`` (uint8, 255 = blurred).

    Parameters
    ----------
    pred_h5 : path
        Prediction file (``maps/{id}``).
    out_dir : path
        Folder (created); existing files of the same names are replaced atomically.
    fmt : ``"png"``, ``"bmp"`` or ``"tif"``
        Lossless formats only (JPEG would change the scores).
    rounding : ``"nearest"`` or ``"floor"``
        ``nearest``: ``rint(255 map)`` (as ``defocus predict``), so an import differs from
        the map by at most 1/510 per pixel and the MAE by at most 1/510. ``floor``: the
        threshold index ``max{k : map >= k/255}`` of the default 256-threshold sweep, so
        every thresholded decision, hence the P/R/F curves and ``f_beta`` with its CI, are
        exactly those of the source file; the per-pixel error is then below 1/255.

    Returns
    -------
    list of Path
        The files written, in the file's id order.
    """
    import h5py
    import numpy as np

    from defocus.evaluate.metrics import quantise
    from defocus.io.image import map_to_uint8, write_image

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"fmt must be one of {EXPORT_FORMATS} (lossless), got {fmt!r}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with h5py.File(pred_h5, "r") as f:
        if "maps" not in f or not len(f["maps"]):
            raise ExternalMapsError(f"prediction file {pred_h5} has no maps to export")
        for iid in f["maps"]:
            m = f[f"maps/{iid}"][()]
            u8 = map_to_uint8(m) if rounding == "nearest" else quantise(m, 256)
            path = out_dir / f"{iid}.{fmt}"
            write_image(path, np.ascontiguousarray(u8, dtype=np.uint8))
            written.append(path)
    return written
