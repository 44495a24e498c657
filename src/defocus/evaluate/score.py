"""Scoring a folder of released result maps in one call: the function behind ``defocus score``.

:func:`score` imports the maps (:func:`defocus.external.import_maps`) into a temporary
prediction file, evaluates it (:func:`defocus.evaluate.evaluate.evaluate_file`) and returns
its table-1 row.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from defocus.io.maps import INTERPOLATIONS


def score(
    maps_dir: str | os.PathLike,
    manifest_csv: str | os.PathLike,
    name: str,
    polarity: str = "white_blurred",
    index_map: str | os.PathLike | None = None,
    allow_subset: bool = False,
    interpolation: str | None = None,
    protocol: Mapping[str, Any] | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Import a folder of maps into a temporary prediction file and return its table-1 row.

    The row has the columns of :data:`defocus.evaluate.tables.TABLE1_COLUMNS` plus
    ``external`` (True), ``subset`` and ``n_missing``, and the preset's ``preset``,
    ``metric``, ``value`` (of that metric), ``accuracy_eq13``, ``map``, ``images`` and
    ``n_split_missing``. With ``allow_subset`` and missing maps, the row is scored on the
    images that have a map (``n_images`` says how many). ``protocol`` overrides
    :data:`defocus.evaluate.evaluate.DEFAULT_PROTOCOL`, e.g. a preset's
    (:func:`defocus.evaluate.protocols.preset_protocol`): when it names a split for this
    dataset (HiFST's 1000 CUHK images, DHDE's 704), the maps of that split's images are
    imported and scored, whatever the manifest's own split column says. ``interpolation``
    defaults to the protocol's ``resize`` (bilinear when that is ``none``); maps are resized
    on import, before a preset's per-image ``mat2gray``.
    """
    from defocus.evaluate.evaluate import evaluate_file
    from defocus.evaluate.protocols import split_for, write_split_manifest
    from defocus.evaluate.tables import table1
    from defocus.external import import_maps
    from defocus.io.manifest import check_gt_classes

    protocol = dict(protocol or {})
    dataset = dataset or Path(manifest_csv).parent.name
    if interpolation is None:
        resize = str(protocol.get("resize", "none"))
        interpolation = resize if resize in INTERPOLATIONS else "bilinear"
    scored = dict(protocol)  # what the summary records: the preset with its split
    absent: list[str] = []
    with tempfile.TemporaryDirectory(prefix="defocus-score-") as tmp:
        if split_for(protocol, dataset) is not None:
            # the preset's images become the test split of a copy of the manifest
            manifest_csv, absent = write_split_manifest(
                manifest_csv, protocol, dataset, Path(tmp) / "split" / "manifest.csv"
            )
            protocol["split"] = None
        check_gt_classes(manifest_csv, split="test")  # all-sharp GT would score F = 0 silently
        h5 = Path(tmp) / f"{name}.h5"
        info = import_maps(
            maps_dir,
            manifest_csv,
            h5,
            name,
            polarity=polarity,
            index_map=index_map,
            allow_subset=allow_subset,
            interpolation=interpolation,
            dataset=dataset,
        )
        manifest = Path(manifest_csv)
        if info["subset"]:
            manifest = _subset_manifest(manifest, info["missing_ids"], Path(tmp))
        _, _, summary = evaluate_file(h5, manifest, "test", protocol, dataset=dataset)
    if split_for(scored, dataset) is not None:
        from defocus.evaluate.evaluate import resolve_protocol
        from defocus.evaluate.metrics import describe_protocol
        from defocus.evaluate.protocols import images_text

        summary["protocol"] = resolve_protocol(scored)
        summary["protocol_text"] = describe_protocol(**summary["protocol"])
        summary["n_split_missing"] = len(absent)
        summary["images"] = images_text(scored, dataset, summary["n_images"], len(absent))
    summary.update(
        method=name,
        dataset=dataset or Path(manifest_csv).parent.name,
        external=True,
        subset=info["subset"],
        n_missing=info["n_missing"],
    )
    row = table1([summary]).iloc[0].to_dict()
    row.update(external=True, subset=info["subset"], n_missing=info["n_missing"])
    row["protocol_text"] = summary["protocol_text"]
    for key in ("preset", "metric", "accuracy_eq13", "map", "images", "n_split_missing"):
        row[key] = summary[key]
    row["value"] = summary.get(summary["metric"], math.nan)
    return row


def _subset_manifest(manifest_csv: Path, missing: list[str], tmp: Path) -> Path:
    """The manifest without the ``missing`` test rows (absolute paths), written under ``tmp``."""
    from defocus.io.manifest import read_manifest, write_manifest

    df = read_manifest(manifest_csv)
    drop = set(missing)
    df = df[~((df["split"] == "test") & df["id"].isin(drop))]
    out = tmp / "subset" / "manifest.csv"
    write_manifest(df.to_dict("records"), out)
    return out
