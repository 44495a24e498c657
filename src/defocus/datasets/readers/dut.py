"""DUT-DBD (DATASETS.md section 2): the training and test folders of images and ``.bmp``
masks, in either spelling of their names.
"""

from __future__ import annotations

import logging
from pathlib import Path

from defocus.datasets.readers.common import IMAGE_EXTS, DatasetLayoutError, _files, _mask_row

log = logging.getLogger(__name__)


#: normalised folder name -> (split, role); DUT mixes '_' and '-' in its folder names.
_DUT_DIRS = {
    "dut600s_training": ("train", "image"),
    "dut600gt_training": ("train", "gt"),
    "dut500s_testing": ("test", "image"),
    "dut500gt_testing": ("test", "gt"),
    # the authors' lab copies of the test set (github wdzhao123/DENets AENet/dataset/)
    "dut500_source": ("test", "image"),
    "dut500_gt": ("test", "gt"),
}


def _read_dut(root: Path, out_dir: Path, polarity: str, **_) -> tuple[list[dict], list[float]]:
    found: dict[tuple[str, str], Path] = {}
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        key = d.name.lower().replace("-", "_")
        if key in _DUT_DIRS and _DUT_DIRS[key] not in found:
            found[_DUT_DIRS[key]] = d
    if not found:
        raise DatasetLayoutError(
            f"DUT: none of DUT600S_Training, DUT600GT_Training, DUT500S-Testing, "
            f"DUT500GT-Testing (or dut500-source, dut500-gt) found under {root}"
        )
    rows, fractions = [], []
    test_stems: set[str] = set()
    for split in ("test", "train"):
        img_dir, gt_dir = found.get((split, "image")), found.get((split, "gt"))
        if img_dir is None and gt_dir is None:
            continue
        if img_dir is None or gt_dir is None:
            have = img_dir or gt_dir
            raise DatasetLayoutError(f"DUT: {have} has no matching image/GT folder for {split}")
        gt_by_stem: dict[str, list[Path]] = {}
        for g in _files(gt_dir, IMAGE_EXTS):
            gt_by_stem.setdefault(g.stem.lower(), []).append(g)
        for img in _files(img_dir, IMAGE_EXTS):
            cands = gt_by_stem.get(img.stem.lower(), [])
            bmp = [c for c in cands if c.suffix.lower() == ".bmp"]  # GT is .bmp (section 2)
            cands = bmp or cands
            if not cands:
                raise DatasetLayoutError(f"DUT: no GT {img.stem}.bmp in {gt_dir} for image {img}")
            stem = img.stem
            if split == "test":
                test_stems.add(stem)
                id_ = stem
            else:
                id_ = f"train_{stem}" if stem in test_stems else stem
            rows.append(_mask_row(id_, split, img, cands[0], out_dir, polarity, fractions))
    return rows, fractions
