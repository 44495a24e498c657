"""The dataset manifest contract: ``results/data/{dataset}/manifest.csv``.

Columns ``id,split,image,gt`` and optionally ``depth``, ``defocus`` and ``coc``; paths are
relative to the manifest's folder (absolute paths are allowed for datasets a user keeps
elsewhere).
``gt`` is a binary mask PNG with **255 = blurred** after the reader has normalised the
polarity; ``depth`` is a ``.npy`` in metres; ``defocus`` a ``.npy`` Gaussian sigma in pixels;
``coc`` (optional, the DMENet release's SYNDOF) a ``.npy`` circle of confusion in pixels.
Empty cells mean "not available" (e.g. no GT for an unlabelled training image).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from defocus.io.atomic import atomic_path

REQUIRED = ("id", "split", "image", "gt")
OPTIONAL = ("depth", "defocus", "coc")
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest is missing, malformed or points at missing files."""


def write_manifest(rows: Iterable[Mapping[str, object]], path: str | os.PathLike) -> pd.DataFrame:
    """Validate and atomically write a manifest; returns the frame written.

    Paths in ``rows`` may be absolute, relative to the manifest's folder, or (when no such
    file exists there) relative to the working directory; paths under the manifest's folder
    are stored relative so the dataset folder can be moved as a whole.
    """
    path = Path(path)
    root = path.parent.resolve()
    df = pd.DataFrame(list(rows))
    for col in REQUIRED:
        if col not in df.columns:
            raise ManifestError(f"manifest {path} lacks column {col!r}")
    cols = list(REQUIRED) + [c for c in OPTIONAL if c in df.columns]
    df = df[cols].copy()

    def rel(p):
        if p is None or (isinstance(p, float) and pd.isna(p)) or p == "":
            return ""
        p = Path(p)
        if not p.is_absolute() and not (root / p).exists() and p.exists():
            p = p.resolve()  # relative to the working directory, not to the manifest
        if p.is_absolute():
            try:
                return p.resolve().relative_to(root).as_posix()
            except ValueError:
                return str(p)
        return p.as_posix()

    for col in cols[2:]:
        df[col] = [rel(p) for p in df[col]]
    _validate(df, path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return df


def _validate(df: pd.DataFrame, path: Path) -> None:
    if df.empty:
        raise ManifestError(f"manifest {path} has no rows")
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise ManifestError(f"manifest {path} has duplicate ids: {dup[:5]}")
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise ManifestError(f"manifest {path}: unknown split(s) {bad}; expected one of {SPLITS}")
    bad_ids = [i for i in df["id"] if "/" in str(i) or str(i).strip() != str(i) or not str(i)]
    if bad_ids:
        raise ManifestError(f"manifest {path}: ids must be non-empty, without '/': {bad_ids[:5]}")


def read_manifest(
    path: str | os.PathLike, split: str | None = None, check_files: bool = True
) -> pd.DataFrame:
    """Read a manifest; path columns become absolute strings ('' stays '').

    With ``split`` only that split's rows are returned. With ``check_files`` every referenced
    file must exist, otherwise :class:`ManifestError` lists the first missing ones.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in REQUIRED:
        if col not in df.columns:
            raise ManifestError(f"manifest {path} lacks column {col!r}")
    _validate(df, path)
    root = path.parent.resolve()
    for col in [c for c in (*REQUIRED[2:], *OPTIONAL) if c in df.columns]:
        df[col] = [str((root / p).resolve()) if p else "" for p in df[col]]
    if split is not None:
        df = df[df["split"] == split].reset_index(drop=True)
    if check_files:
        missing = [
            p
            for col in [c for c in (*REQUIRED[2:], *OPTIONAL) if c in df.columns]
            for p in df[col]
            if p and not Path(p).exists()
        ]
        if missing:
            raise ManifestError(
                f"manifest {path} references {len(missing)} missing file(s), e.g. {missing[:3]}"
            )
    return df


def folder_fingerprint(root: str | os.PathLike) -> str:
    """SHA-256 over the sorted (relative path, size, mtime in ns) of every file under ``root``.

    Hidden files and folders (names starting with ".") are left out, as the readers skip
    them. Any added, removed, resized or re-saved file changes the value; reading no file
    content keeps it cheap on large datasets.
    """
    root = Path(root)
    h = hashlib.sha256()
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            try:
                st = p.stat()
            except OSError:  # a dangling link: its name still counts
                entries.append((p.relative_to(root).as_posix(), -1, -1))
                continue
            entries.append((p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    for rel, size, mtime in sorted(entries):
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def check_gt_classes(path: str | os.PathLike, split: str | None = None) -> float:
    """Pooled blurred fraction of a manifest's GT masks; fails when they are all one class.

    A dataset whose every GT pixel is sharp (or blurred) cannot be scored: it is what a
    wrong mask encoding or polarity gives (every score then halves or vanishes), so this
    raises :class:`ManifestError` naming the manifest, a mask and the fix. Rows without GT
    are skipped; a manifest without any GT gives ``nan``.
    """
    from defocus.io.image import read_gray

    df = read_manifest(path, split=split)
    paths = [p for p in df["gt"] if p]
    if not paths:
        return float("nan")
    blurred = total = 0
    for p in paths:
        m = read_gray(p)
        half = 127 if m.dtype == np.uint8 else np.iinfo(m.dtype).max // 2
        blurred += int(np.count_nonzero(m > half))
        total += m.size
    frac = blurred / total
    if frac in (0.0, 1.0):
        what = "blurred" if frac else "sharp"
        raise ManifestError(
            f"every GT mask of {path}{f' (split {split})' if split else ''} is entirely {what} "
            f"(e.g. {paths[0]}): the masks' encoding or polarity is wrong; check a mask and "
            "the dataset's polarity (config datasets.<name>.polarity)"
        )
    return frac
