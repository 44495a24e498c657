"""ILSVRC (DATASETS.md section 9): a seeded sample of ``n`` images without GT, the natural
photos of DHDE's training.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from defocus.datasets.readers.common import IMAGE_EXTS, DatasetLayoutError, _files

log = logging.getLogger(__name__)


def _read_ilsvrc(root: Path, out_dir: Path, polarity: str, n: int = 300, seed: int = 0, **_):
    files = _files(root, IMAGE_EXTS)
    if not files:
        raise DatasetLayoutError(f"ILSVRC: no images under {root}")
    if len(files) < n:
        log.warning("ILSVRC: only %d images under %s, fewer than n=%d", len(files), root, n)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(files), size=min(n, len(files)), replace=False))
    rows, seen = [], set()
    for i in pick:
        p = files[i]
        id_ = p.stem
        if id_ in seen:
            id_ = "_".join(p.relative_to(root).with_suffix("").parts)
        seen.add(id_)
        rows.append({"id": id_, "split": "train", "image": str(p.resolve()), "gt": ""})
    return rows, []
