"""Import released result maps ("external methods") as prediction files.

Most defocus-blur papers after 2018 released result maps rather than code (BTBNet, CENet,
BR2Net, DeFusionNet's own maps, D-DFFNet, ...). :func:`import_maps` turns such a folder into
a prediction file (the contract of :mod:`defocus.io.predictions`), so the maps go through
the same ``evaluate`` rule and land in the same tables as the methods run here.

The other parts live where they belong:

* reading one map file (8/16-bit, float, colour -> BT.601 luma, polarity, resizing):
  :mod:`defocus.io.maps`;
* result names -> ids (``btbnet_cuhk`` and ``<result name>--<image file>`` files):
  :mod:`defocus.datasets.index_maps`;
* the reverse, a prediction file -> a folder of PNGs (255 = blurred): :mod:`defocus.io.export`;
* the one-call import + evaluate behind ``defocus score``: :mod:`defocus.evaluate.score`,
  and its command line in :mod:`defocus.cli`;
* the checks of the config's ``external_methods``: the schema and
  :func:`defocus.config.external_config_errors`.

Matching maps to ids
--------------------
A map matches the manifest id whose name equals the file's stem, case-insensitively, for
any of the extensions in :data:`~defocus.io.maps.MAP_EXTENSIONS` (so
``OUT_OF_FOCUS0037.PNG`` matches id ``out_of_focus0037``). With an *index map*
(:func:`~defocus.datasets.index_maps.read_index_map`) the stem is first translated, e.g.
``btbnet_cuhk`` maps the result names ``1.bmp`` ... ``100.bmp`` of BTBNet/DeFusionNet-style
folders to CUHK ids.

Prediction file of an import
----------------------------
``device = "external"``, ``seconds = NaN`` for every image (released maps carry no
timing), and the extra attributes ``external`` (True), ``maps_dir``, ``polarity``,
``index_map``, ``interpolation``, ``subset``, ``n_missing``, ``missing_ids`` (JSON list),
``n_resized`` and ``n_files``.

numpy, pandas and h5py are imported inside the functions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

from defocus.io.maps import (
    INTERPOLATIONS,
    MAP_EXTENSIONS,
    POLARITIES,
    ExternalMapsError,
    decode_map,
    resize_map,
)

log = logging.getLogger(__name__)

#: device attribute of imported prediction files (tables mark these rows ``external``)
EXTERNAL_DEVICE = "external"


class ExternalMapsWarning(UserWarning):
    """Something in a folder of released maps looks wrong but does not stop the import."""


def _short(items: list[str], n: int = 20) -> str:
    items = list(items)
    head = ", ".join(items[:n])
    return head + (f", ... ({len(items) - n} more)" if len(items) > n else "")


# --------------------------------------------------------------------------------------
# matching a folder to the manifest's ids
# --------------------------------------------------------------------------------------


def match_maps(
    maps_dir: str | os.PathLike,
    ids: list[str],
    index_map: str | os.PathLike | None = None,
    other_ids: list[str] = (),
) -> tuple[dict[str, Path], list[str], list[Path], list[Path]]:
    """Match the map files of ``maps_dir`` (not recursive) to ``ids``.

    Parameters
    ----------
    maps_dir : path
        Folder of maps; files with other extensions than :data:`MAP_EXTENSIONS` (README,
        ``.DS_Store``, ``.npy``) are ignored.
    ids : list of str
        The ids to score (the manifest's test split).
    index_map : see :func:`defocus.datasets.index_maps.read_index_map`
    other_ids : list of str
        Ids of the other splits of the manifest: files that match them are returned apart.

    Returns
    -------
    matched : dict
        id -> file, for the ids that have a map.
    missing : list of str
        Ids without a map (in the order of ``ids``).
    unmatched : list of Path
        Map files that match no id at all.
    other : list of Path
        Map files that match an id of ``other_ids`` (not scored).

    Raises
    ------
    ExternalMapsError
        If the folder does not exist or two files match the same id.
    """
    maps_dir = Path(maps_dir)
    if not maps_dir.is_dir():
        raise ExternalMapsError(f"maps folder not found: {maps_dir}")
    from defocus.datasets.index_maps import read_index_map

    translate = read_index_map(index_map)
    by_key = {i.lower(): i for i in ids}
    if len(by_key) != len(ids):
        raise ExternalMapsError("manifest ids differ only by case; cannot match maps by name")
    other_keys = {o.lower() for o in other_ids}
    matched: dict[str, Path] = {}
    unmatched: list[Path] = []
    other: list[Path] = []
    files = sorted(
        p for p in maps_dir.iterdir() if p.is_file() and p.suffix.lower() in MAP_EXTENSIONS
    )
    for p in files:
        key = p.stem.lower()
        key = translate.get(key, key)
        iid = by_key.get(key)
        if iid is None:
            (other if key in other_keys else unmatched).append(p)
            continue
        if iid in matched:
            raise ExternalMapsError(
                f"two map files match id {iid!r}: {matched[iid].name} and {p.name} "
                f"(in {maps_dir}); remove one"
            )
        matched[iid] = p
    missing = [i for i in ids if i not in matched]
    return matched, missing, unmatched, other


def _warn(message: str) -> None:
    log.warning(message)
    warnings.warn(message, ExternalMapsWarning, stacklevel=3)


# --------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------


def import_maps(
    maps_dir: str | os.PathLike,
    manifest_csv: str | os.PathLike,
    out_h5: str | os.PathLike,
    name: str,
    polarity: str = "white_blurred",
    index_map: str | os.PathLike | None = None,
    allow_subset: bool = False,
    interpolation: str = "bilinear",
    dataset: str | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """Write a prediction file from a folder of released maps, for one manifest split.

    Parameters
    ----------
    maps_dir : path
        Folder of maps, one per image, named by id (any case, any of
        :data:`MAP_EXTENSIONS`) or by a name that ``index_map`` translates.
    manifest_csv : path
        Dataset manifest; the maps are matched to the ids of ``split`` and resized to the
        size of their GT mask (the image where a row has no GT).
    out_h5 : path
        Prediction file to write (atomically).
    name : str
        Method label (``method`` attribute; the table row's name).
    polarity : ``"white_blurred"`` or ``"white_sharp"``
        Which end of the map is blurred in the files; ``white_sharp`` maps are inverted.
    index_map : None, ``"btbnet_cuhk"`` or path
        Translation of result names to ids
        (:func:`defocus.datasets.index_maps.read_index_map`).
    allow_subset : bool
        Score the ids that have a map when some are missing (the file records
        ``subset=True``, ``n_missing`` and ``missing_ids``); otherwise missing maps are an
        error.
    interpolation : str
        ``bilinear`` (default), ``nearest``, ``bicubic`` or ``area``, for maps whose size
        differs from the GT's.
    dataset : str, optional
        Dataset name in the attributes (default: the manifest's folder name).
    split : str
        Manifest split (``test``).

    Returns
    -------
    dict
        ``n_images, n_missing, missing_ids, subset, n_resized, unmatched, constant``.

    Raises
    ------
    ExternalMapsError
        Maps missing for ids (listed) without ``allow_subset``; no file matching any id;
        an unreadable map (named); two files for one id; bad ``polarity``/``interpolation``.

    Warns
    -----
    ExternalMapsWarning
        Files that match no id of the split (listed); maps that are one value everywhere;
        8-bit maps whose maximum is 1 (a 0/1 mask saved without scaling?); maps resized
        across a changed aspect ratio.
    """
    import numpy as np

    from defocus.io.manifest import read_manifest
    from defocus.io.predictions import PredictionWriter

    if polarity not in POLARITIES:
        raise ExternalMapsError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    if interpolation not in INTERPOLATIONS:
        raise ExternalMapsError(
            f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}"
        )
    manifest_csv = Path(manifest_csv)
    full = read_manifest(manifest_csv)
    df = full[full["split"] == split].reset_index(drop=True)
    if df.empty:
        raise ExternalMapsError(f"manifest {manifest_csv} has no rows in split {split!r}")
    ids = df["id"].tolist()
    other = full["id"][full["split"] != split].tolist()
    matched, missing, unmatched, in_other = match_maps(maps_dir, ids, index_map, other)
    if not matched:
        raise ExternalMapsError(
            f"no map in {maps_dir} matches any of the {len(ids)} {split} id(s) of {manifest_csv} "
            f"(e.g. {_short(ids, 3)}); map files seen ({'/'.join(MAP_EXTENSIONS)}): "
            f"{_short([p.name for p in unmatched + in_other], 5) or 'none'}"
            + ("" if index_map else "; result names like 1.bmp need index_map='btbnet_cuhk'")
        )
    if in_other:
        names = [p.name for p in in_other]
        log.info("%d map(s) of other splits ignored: %s", len(names), _short(names))
    if unmatched:
        _warn(
            f"{len(unmatched)} file(s) in {maps_dir} match no id of {manifest_csv}: "
            f"{_short([p.name for p in unmatched])}"
        )
    if missing and not allow_subset:
        raise ExternalMapsError(
            f"{maps_dir} has no map for {len(missing)} of {len(ids)} {split} id(s) of "
            f"{manifest_csv}: {_short(missing)} (pass allow_subset=True / --subset to score "
            "the others)"
        )
    if missing:
        _warn(
            f"scoring {name} on a subset: {len(matched)} of {len(ids)} {split} images "
            f"({len(missing)} missing: {_short(missing)})"
        )
    cfg = {
        "external": True,
        "maps_dir": str(Path(maps_dir)),
        "polarity": polarity,
        "index_map": None if index_map is None else str(index_map),
        "interpolation": interpolation,
        "allow_subset": bool(allow_subset),
    }
    n_resized, constant = 0, []
    with PredictionWriter(
        out_h5,
        method=name,
        dataset=dataset or manifest_csv.parent.name,
        config=cfg,
        device=EXTERNAL_DEVICE,
    ) as w:
        for row in df.itertuples(index=False):
            if row.id not in matched:
                continue
            path = matched[row.id]
            try:
                m, dtype = decode_map(path, invert=polarity == "white_sharp")
            except ExternalMapsError as e:
                raise ExternalMapsError(f"unreadable map for id {row.id!r}: {e}") from None
            lo, hi = float(m.min()), float(m.max())
            if lo == hi:
                constant.append(path.name)
            elif dtype == np.uint8 and {round(lo * 255), round(hi * 255)} in ({0, 1}, {254, 255}):
                _warn(f"{path}: 8-bit map with values 0..1 only; a 0/1 mask saved unscaled?")
            ref = row.gt or row.image
            shape = _image_shape(ref)
            if m.shape != shape:
                ratio_map, ratio_ref = m.shape[1] / m.shape[0], shape[1] / shape[0]
                if abs(ratio_map / ratio_ref - 1) > 0.02:
                    _warn(
                        f"{path.name}: map {m.shape[0]}x{m.shape[1]} resized to {shape[0]}x"
                        f"{shape[1]} (HxW) across a different aspect ratio; wrong image?"
                    )
                m = resize_map(m, shape, interpolation)
                n_resized += 1
            w.add(row.id, m, seconds=math.nan)
        w.attrs.update(
            external=True,
            maps_dir=str(Path(maps_dir).resolve()),
            polarity=polarity,
            index_map="" if index_map is None else str(index_map),
            interpolation=interpolation,
            subset=bool(missing),
            n_missing=len(missing),
            missing_ids=json.dumps(missing),
            n_resized=n_resized,
            n_files=len(matched) + len(unmatched) + len(in_other),
        )
    if constant:
        _warn(
            f"{len(constant)} map(s) in {maps_dir} are one value everywhere (they score like "
            f"a constant guess): {_short(constant)}"
        )
    if n_resized:
        log.info("%d map(s) resized to the GT size (%s)", n_resized, interpolation)
    return {
        "n_images": len(matched),
        "n_missing": len(missing),
        "missing_ids": missing,
        "subset": bool(missing),
        "n_resized": n_resized,
        "unmatched": [p.name for p in unmatched],
        "constant": constant,
    }


def _image_shape(path: str) -> tuple[int, int]:
    from defocus.io.image import ImageError, read_gray

    try:
        return tuple(read_gray(path).shape[:2])
    except ImageError as e:
        raise ExternalMapsError(f"cannot read the reference size: {e}") from None
