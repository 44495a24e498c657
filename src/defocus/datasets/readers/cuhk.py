"""CUHK blur detection dataset (DATASETS.md sections 1 and 3): the ``out_of_focus*`` images
and their masks, the BTBNet test split (:func:`cuhk_btbnet_test_ids`) and split files
(:func:`parse_split`).
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path

from defocus.datasets.readers.common import DatasetLayoutError, _files, _mask_row

log = logging.getLogger(__name__)


_CUHK_RE = re.compile(r"^(motion|out_of_focus)\d{4}$", re.IGNORECASE)


def cuhk_btbnet_test_ids() -> list[str]:
    """The 100 ids (file stems) of the BTBNet CUHK test split, in BTBNet result order.

    Read from the shipped ``splits/cuhk_btbnet_test.txt`` (lines ``N.bmp--<file>``).
    """
    text = resources.files("defocus.datasets").joinpath("splits/cuhk_btbnet_test.txt")
    return parse_split(text.read_text())


def parse_split(text: str) -> list[str]:
    """Ids of a split file's text, in file order: ``#`` lines are comments; a line
    ``N.bmp--<file>`` (BTBNet result name and CUHK file) gives the stem of ``<file>``; any other
    line is an id or a file name (its stem is the id)."""
    ids = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fname = line.split("--", 1)[1] if "--" in line else line
        ids.append(Path(fname).stem)
    return ids


def _read_cuhk(root: Path, out_dir: Path, polarity: str, **_) -> tuple[list[dict], list[float]]:
    images: dict[str, Path] = {}
    for p in _files(root, (".jpg", ".jpeg")):
        if not _CUHK_RE.match(p.stem) or not p.stem.lower().startswith("out_of_focus"):
            continue  # motion* images are not part of the defocus task
        key = p.stem.lower()
        if key in images:
            raise DatasetLayoutError(f"CUHK: two images for id {key}: {images[key]} and {p}")
        images[key] = p
    if not images:
        raise DatasetLayoutError(
            f"CUHK: no out_of_focus*.jpg images under {root} (expected image/ and gt/ from "
            "BlurDatasetImage.zip and BlurDatasetGT.zip)"
        )
    gts: dict[str, list[Path]] = {}
    for p in _files(root, (".png",)):
        if p.stem.lower() in images:
            gts.setdefault(p.stem.lower(), []).append(p)
    test_ids = {i.lower() for i in cuhk_btbnet_test_ids()}
    missing_test = sorted(test_ids - set(images))
    if missing_test:
        log.warning(
            "CUHK: %d of the 100 BTBNet test images are absent under %s, e.g. %s",
            len(missing_test),
            root,
            missing_test[:3],
        )
    rows, fractions = [], []
    for key, img in sorted(images.items()):
        cands = gts.get(key, [])
        if len(cands) > 1:  # prefer a file in a folder called gt
            in_gt = [c for c in cands if c.parent.name.lower() == "gt"]
            cands = in_gt if len(in_gt) == 1 else cands
        if not cands:
            raise DatasetLayoutError(f"CUHK: no GT mask {key}.png for image {img}")
        if len(cands) > 1:
            raise DatasetLayoutError(f"CUHK: ambiguous GT for {img}: {[str(c) for c in cands]}")
        split = "test" if key in test_ids else "train"
        rows.append(_mask_row(key, split, img, cands[0], out_dir, polarity, fractions))
    return rows, fractions
