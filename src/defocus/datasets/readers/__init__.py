"""Readers: normalise each dataset's source layout into ``out_dir/manifest.csv``.

The manifest contract is in :mod:`defocus.io.manifest` (``id,split,image,gt[,depth,
defocus]``). Images are referenced in place (absolute paths); everything derived is written
under ``out_dir``:

* ``gt/{id}.png``: binary mask, uint8 {0, 255}, **255 = blurred**, converted from the
  dataset's declared polarity (registry ``gt_polarity``, or ``polarity_override``);
* ``depth/{id}.npy``: float32 depth in metres (``nan`` = invalid);
* ``defocus/{id}.npy``: float32 per-pixel defocus (RTF).

Layout facts are cited from ``/work/shared/DATASETS.md`` by section.

Package layout: one module per dataset family, :mod:`~defocus.datasets.readers.cuhk`,
:mod:`~.dut`, :mod:`~.rtf`, :mod:`~.depth` (Sintel, Middlebury 2014, SYNTHIA) and
:mod:`~.ilsvrc`, each a reader ``(root, out_dir, polarity, **options) -> (rows,
blurred fractions)``; :mod:`~.common` holds what they share (the GT conversion and
polarity checks, file listing, size checks). This module maps registry names to readers
(:data:`READERS`) and runs one (:func:`build_manifest`). Every name is importable from
this package.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from defocus.datasets.readers.common import (
    IMAGE_EXTS,
    POLARITIES,
    DatasetLayoutError,
    PolarityWarning,
    check_dataset_polarity,
    check_polarity,
    to_blurred_mask,
)

# the shared helpers that defocus.datasets.dmenet_release builds on
from defocus.datasets.readers.common import _check_same_size as _check_same_size
from defocus.datasets.readers.common import _files as _files
from defocus.datasets.readers.common import _mask_row as _mask_row
from defocus.datasets.readers.common import _save_npy as _save_npy
from defocus.datasets.readers.cuhk import _read_cuhk, cuhk_btbnet_test_ids, parse_split
from defocus.datasets.readers.depth import _read_middlebury, _read_sintel, _read_synthia
from defocus.datasets.readers.dut import _read_dut
from defocus.datasets.readers.ilsvrc import _read_ilsvrc
from defocus.datasets.readers.rtf import _read_rtf, rtf_to_sigma
from defocus.datasets.registry import get_spec
from defocus.io.manifest import write_manifest

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTS",
    "POLARITIES",
    "READERS",
    "DatasetLayoutError",
    "PolarityWarning",
    "build_manifest",
    "check_dataset_polarity",
    "check_polarity",
    "cuhk_btbnet_test_ids",
    "parse_split",
    "rtf_to_sigma",
    "to_blurred_mask",
]


def _read_release(root: Path, out_dir: Path, polarity: str, **options):
    """The DMENet authors' data and plain photo folders (:mod:`defocus.datasets.dmenet_release`,
    imported here because it builds on this package's helpers)."""
    from defocus.datasets import dmenet_release

    part = options.pop("part")
    if part == "photos":
        return dmenet_release.read_photo_folder(root), []
    return dmenet_release.read_release_part(root, out_dir, polarity, part=part, **options)


READERS: dict[str, Callable] = {
    "cuhk": _read_cuhk,
    "dut": _read_dut,
    "rtf": _read_rtf,
    "sintel": _read_sintel,
    "middlebury2014": _read_middlebury,
    "synthia": _read_synthia,
    "ilsvrc": _read_ilsvrc,
    "photos": partial(_read_release, part="photos"),
    "dmenet_release": partial(_read_release, part="all"),
    "dmenet_release_syndof": partial(_read_release, part="syndof"),
    "dmenet_release_cuhk": partial(_read_release, part="cuhk"),
    "dmenet_release_flickr": partial(_read_release, part="flickr"),
    "dmenet_release_rtf": partial(_read_release, part="rtf", noise_level="0"),
    "dmenet_release_rtf1": partial(_read_release, part="rtf", noise_level="1"),
    "dmenet_release_rtf1_6": partial(_read_release, part="rtf", noise_level="1.6"),
}


def build_manifest(
    name: str,
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    polarity_override: str | Mapping | None = None,
    **options,
) -> Path:
    """Normalise dataset ``name`` found under ``root`` into ``out_dir/manifest.csv``.

    Parameters
    ----------
    name : str
        Registry name: ``cuhk``, ``dut``, ``rtf``, ``sintel``, ``middlebury2014``,
        ``synthia`` or ``ilsvrc``.
    root : path-like
        The unpacked dataset (a download root or the user's ``datasets.<name>.root``); the
        readers search it recursively, so an extra top folder is fine.
    out_dir : path-like
        Where ``manifest.csv`` and derived files (``gt/``, ``depth/``, ``defocus/``) go.
    polarity_override : {"white_blurred", "white_sharp"} or mapping, optional
        Replaces the registry's declared GT polarity (binary datasets only). The config entry
        ``datasets.<name>`` (a mapping) is accepted too: its ``polarity`` is used, and its
        ``scenes`` and ``n_images`` become the reader options ``scenes`` and ``n``, and its
        ``conversion``, ``image_root`` and ``noise_level`` the RTF options (explicit
        ``options`` win).
    **options
        Reader options:

        * ``rtf``: ``noise_level`` (sub-folder of ``gt/``, default ``"0"``), ``conversion``
          (DMENet's ``convertion.mat`` or an Nx2 array [sigma, RTF value]; without it the raw
          blurMap is stored and a warning logged), ``threshold`` (default 0.5: the binary GT
          is ``sigma > threshold``; our choice for binary metrics, not from the papers),
          ``image_root`` (folder of the input images, default ``root``);
        * ``sintel``: ``render_pass`` (``"clean"``, or ``"final"``);
        * ``sintel``, ``middlebury2014``, ``synthia``: ``scenes``, a subset of scene /
          sequence names (Middlebury ``Adirondack`` or ``Adirondack-perfect``);
        * ``synthia``: ``camera`` (default ``"Stereo_Right/Omni_F"`` as SYNDOF; None = all);
        * ``ilsvrc``: ``n`` (default 300, Park et al. CVPR'17) and ``seed`` (default 0).

    Returns
    -------
    Path
        ``out_dir/manifest.csv``.

    Raises
    ------
    DatasetLayoutError
        Missing folders/files, a GT missing for an image, or image/GT sizes that differ
        (the message names both files and sizes).

    Warns
    -----
    PolarityWarning
        A mask is all one class, or the dataset's mean blurred fraction is < 0.5.
    """
    spec = get_spec(name)
    if isinstance(polarity_override, Mapping):
        entry = polarity_override
        polarity_override = entry.get("polarity")
        if entry.get("scenes"):
            options.setdefault("scenes", list(entry["scenes"]))
        if entry.get("n_images"):
            options.setdefault("n", int(entry["n_images"]))
        for key in ("conversion", "image_root", "noise_level"):  # RTF (config schema)
            if entry.get(key) is not None:
                options.setdefault(key, str(entry[key]))
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset {name}: root {root} is not a folder")
    polarity = polarity_override or spec.gt_polarity or "white_blurred"
    if polarity not in POLARITIES:
        raise ValueError(f"polarity_override must be one of {POLARITIES}, got {polarity!r}")
    if polarity_override and spec.kind != "binary":
        log.warning("dataset %s has no binary GT in its source; polarity_override ignored", name)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, fractions = READERS[name](root, out_dir, polarity, **options)
    if spec.kind == "binary":
        check_dataset_polarity(fractions, name, polarity)
    path = out_dir / "manifest.csv"
    write_manifest(rows, path)
    log.info("dataset %s: %d rows -> %s", name, len(rows), path)
    return path
