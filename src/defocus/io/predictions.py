"""Prediction files: ``results/predictions/{method}/{dataset}.h5``.

Layout (the contract between the predict and evaluate stages):

* ``maps/{id}``: float32 (H, W) in [0, 1], 1 = blurred, the image's size — the scored map;
* ``raw/{id}``: the physical map (sigma or CoC in pixels) where the method has one;
  its unit is in the dataset attribute ``unit``;
* ``net/{id}`` (optional; only files of methods with a ``net_unit``): float32 (H, W), the
  network's own output before it is decoded to ``raw`` (no clamp), unit in the dataset
  attribute ``unit`` and the file attribute ``net_unit``. DMENet with ``target="coc"``
  stores CoC / 15 (unit ``coc/15``), the quantity its authors score on their SYNDOF test
  set (:func:`defocus.evaluate.continuous.release_syndof_errors`); ``raw`` is its decoding
  ``max(0, (15 net - 1) / 2)`` (sigma px). Files without it have no ``net`` group;
* ``seconds/{id}``: scalar, wall-clock seconds of ``predict`` for that image; how they were
  taken is in the file attribute ``timing`` (the predict rule: after one untimed warm-up
  prediction of the first image, whose seconds are in ``warmup_seconds``;
  :mod:`defocus.predict`);
* file attributes: ``method``, ``dataset``, ``config_hash``, ``device``, ``seconds_per_image``
  (mean), ``n_images``, ``created`` (ISO time), ``defocus_version``, and what made the maps
  (:func:`defocus.provenance.provenance_attrs`): ``versions_json`` (python, numpy, scipy,
  opencv, skimage, sklearn, pymatting, pyamg, torch, torchvision, ... and ``git_commit``),
  ``git_commit``, one ``version_{name}`` per package (``version_numpy`` ...) and
  ``hardware_class`` (the CPU class the kernels ran on, e.g. ``x86_64-v4``).

Files are written to a temporary name and renamed on close (see :class:`PredictionWriter`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from defocus import __version__
from defocus.provenance import provenance_attrs


class PredictionError(ValueError):
    """A prediction file is missing, incomplete or inconsistent with its manifest."""


def config_hash(obj: Any) -> str:
    """Stable short hash of a JSON-serialisable config fragment."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class PredictionWriter:
    """Context manager writing one prediction file atomically.

    >>> with PredictionWriter(path, method="lbp", dataset="cuhk", config={...}) as w:
    ...     w.add("img1", blur_map, seconds=0.3)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        method: str,
        dataset: str,
        config: Any = None,
        device: str = "cpu",
        raw_unit: str = "",
        net_unit: str = "",
    ) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.attrs = {
            "method": method,
            "dataset": dataset,
            "config_hash": config_hash(config),
            "config_json": json.dumps(config, sort_keys=True, default=str),
            "device": device,
            "defocus_version": __version__,
            **provenance_attrs(),
        }
        self.raw_unit = raw_unit
        self.net_unit = net_unit
        self._seconds: list[float] = []
        self._sizes: set[tuple[int, int]] = set()
        self._f: h5py.File | None = None

    def __enter__(self) -> PredictionWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = h5py.File(self.tmp, "w")
        for g in ("maps", "raw", "seconds"):
            self._f.create_group(g)
        return self

    def add(
        self,
        image_id: str,
        blur_map: np.ndarray,
        seconds: float,
        raw: np.ndarray | None = None,
        net: np.ndarray | None = None,
    ):
        """Store one image's map (checked: 2-D, finite, in [0, 1]); ``net``, the network's
        undecoded output (checked: the map's shape, finite), needs ``net_unit``."""
        assert self._f is not None, "use PredictionWriter as a context manager"
        m = np.asarray(blur_map, dtype=np.float32)
        if m.ndim != 2:
            raise PredictionError(f"{image_id}: blur map must be 2-D, got shape {m.shape}")
        if not np.all(np.isfinite(m)) or m.min() < -1e-6 or m.max() > 1 + 1e-6:
            raise PredictionError(
                f"{image_id}: blur map must be finite and in [0, 1], "
                f"got range [{np.nanmin(m):.4g}, {np.nanmax(m):.4g}]"
            )
        self._f.create_dataset(
            f"maps/{image_id}", data=np.clip(m, 0, 1), compression="gzip", compression_opts=4
        )
        if raw is not None:
            d = self._f.create_dataset(
                f"raw/{image_id}", data=np.asarray(raw, np.float32), compression="gzip"
            )
            d.attrs["unit"] = self.raw_unit
        if net is not None:
            self._add_net(image_id, net, m.shape)
        self._f.create_dataset(f"seconds/{image_id}", data=float(seconds))
        self._seconds.append(float(seconds))
        self._sizes.add(m.shape)

    def _add_net(self, image_id: str, net: np.ndarray, shape: tuple[int, ...]) -> None:
        assert self._f is not None
        if not self.net_unit:
            raise PredictionError(f"{image_id}: a net output needs the writer's net_unit")
        n = np.asarray(net, np.float32)
        if n.shape != shape or not np.all(np.isfinite(n)):
            raise PredictionError(
                f"{image_id}: net output must be finite and of the map's shape {shape}, "
                f"got shape {n.shape}"
            )
        if "net" not in self._f:  # only files that have it get the group
            self._f.create_group("net")
            self.attrs["net_unit"] = self.net_unit
        d = self._f.create_dataset(f"net/{image_id}", data=n, compression="gzip")
        d.attrs["unit"] = self.net_unit

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._f is not None
        try:
            if exc_type is None:
                a = self._f.attrs
                for k, v in self.attrs.items():
                    a[k] = v
                a["n_images"] = len(self._seconds)
                a["seconds_per_image"] = float(np.mean(self._seconds)) if self._seconds else 0.0
                a["image_sizes"] = json.dumps(sorted(self._sizes))
                a["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        finally:
            self._f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()


@contextlib.contextmanager
def open_predictions(path: str | os.PathLike, delete_if_corrupt: bool = False):
    """Open a prediction file for reading; a truncated or corrupt file raises a one-line
    :class:`PredictionError` naming it and the fix.

    With ``delete_if_corrupt`` (the workflow's own outputs) the broken file is deleted, so the
    next ``snakemake`` run remakes it instead of failing on it again.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"prediction file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        reason = (str(e).splitlines() or ["unreadable"])[0]
        if delete_if_corrupt:
            path.unlink()
            fix = "deleted it: run snakemake again to remake it"
        else:
            fix = "delete it and make it again (snakemake remakes results/predictions/...)"
        raise PredictionError(
            f"prediction file {path} is truncated or corrupt ({reason}); {fix}"
        ) from None
    with f:
        yield f


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """File attributes of a prediction file as a plain dict."""
    with open_predictions(path) as f:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}


def read_map(path: str | os.PathLike, image_id: str, group: str = "maps") -> np.ndarray:
    """One map from a prediction file (``group`` = ``maps``, ``raw`` or ``net``)."""
    with open_predictions(path) as f:
        key = f"{group}/{image_id}"
        if key not in f:
            raise PredictionError(f"{path} has no {key}")
        return f[key][()]


def iter_maps(path: str | os.PathLike, ids: list[str], group: str = "maps"):
    """Yield ``(id, map, seconds)`` for ``ids`` in order; missing ids raise PredictionError."""
    with open_predictions(path) as f:
        missing = [i for i in ids if f"{group}/{i}" not in f]
        if missing:
            raise PredictionError(f"{path} lacks {group} for {len(missing)} id(s): {missing[:5]}")
        for i in ids:
            sec = float(f[f"seconds/{i}"][()]) if f"seconds/{i}" in f else float("nan")
            yield i, f[f"{group}/{i}"][()], sec
