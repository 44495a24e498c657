"""Evaluate one prediction file against its dataset manifest.

``evaluate_file`` reads the GT masks of one split of a manifest (``gt`` column, PNG with
255 = blurred, binarised at 0.5 of the dtype's range), the scored maps ``maps/{id}`` of a
prediction file, and returns per-image metrics, curves and a summary under a declared
protocol (:data:`DEFAULT_PROTOCOL`, described in :mod:`defocus.evaluate.metrics`).
``write_outputs`` writes them atomically to the paths of the metrics contract:
``results/metrics/{method}/{dataset}.csv``, ``results/curves/{method}/{dataset}.npz`` and a
summary JSON.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from defocus.evaluate.bootstrap import BootstrapCI, bootstrap_f_beta, bootstrap_mean
from defocus.evaluate.continuous import (
    continuous_errors,
    net_unit_max_coc,
    release_syndof_errors,
)
from defocus.evaluate.metrics import (
    BinaryEvaluator,
    Counts,
    binarise_gt,
    describe_protocol,
    f_beta,
    mat2gray,
    sigma_levels,
    threshold_counts,
)
from defocus.evaluate.protocols import images_text, select_rows, split_for
from defocus.io.atomic import atomic_path
from defocus.io.image import read_gray
from defocus.io.manifest import OPTIONAL, REQUIRED, ManifestError, read_manifest
from defocus.io.predictions import PredictionError

log = logging.getLogger(__name__)

#: provenance of released maps scored by :mod:`defocus.external`
EXTERNAL_PROVENANCE: dict[str, Any] = {
    "implementation": "external",
    "weights": "external maps",
    "backbone_init": "n/a",
    "training": "n/a",
    "paper_scale": True,
    "faithful": False,
    "differs": "result maps read from a folder (config external_methods, defocus score)",
}

#: the declared default protocol; every key may be overridden by ``protocol=``
DEFAULT_PROTOCOL: dict[str, Any] = {
    "beta2": 0.3,  # Achanta et al. CVPR 2009
    "n_thresholds": 256,  # t_k = k/255
    "averaging": "image",  # image | image_maxf | pooled
    "positive": "blurred",  # blurred | sharp
    "fixed_threshold": 0.5,  # accuracy / IoU threshold
    "adaptive_factor": 2.0,  # adaptive threshold min(2 mean(1 - map), 1) on the in-focus map
    "n_bootstrap": 1000,  # resamples for the 95% CIs
    "seed": 0,  # np.random.default_rng(seed) of the bootstrap
    "ci_level": 0.95,
    "continuous_clip": None,  # e.g. [0, 3.275] for RTF (DMENet evaluation/RTF)
    "continuous_scale": None,  # e.g. 3.275 for RTF
    "continuous_crop": False,  # centre-crop raw map and GT to the common size
    # named presets (defocus.evaluate.protocols): the declared values below
    "preset": "declared",  # the preset's name, printed in captions
    "normalise": "none",  # none | mat2gray (per-image min-max stretch, HiFST's evaluation)
    "resize": "none",  # none (sizes must match) | bilinear | bicubic | nearest | area
    "gt_binarise": "half",  # half (>= 0.5 of the range) | nonzero (HiFST's evaluation)
    "eq13_alpha": 0.3,  # Park et al. CVPR 2017 Eq. 13, for accuracy_eq13
    "sigma_levels": None,  # [low, high, n]: PR over absolute sigma of raw maps (DHDE Sec. 6)
    "split": None,  # {dataset: named split file}: the images scored (else the test split)
    "metric": "f_beta",  # the preset's ranking metric (defocus.evaluate.protocols.METRICS)
}


def resolve_protocol(protocol: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``protocol``; unknown keys raise ValueError naming valid ones."""
    protocol = dict(protocol or {})
    unknown = sorted(set(protocol) - set(DEFAULT_PROTOCOL))
    if unknown:
        raise ValueError(
            f"unknown protocol key(s) {unknown}; valid keys: {sorted(DEFAULT_PROTOCOL)}"
        )
    return {**DEFAULT_PROTOCOL, **protocol}


def _resize(m: np.ndarray, shape: tuple[int, ...], how: str, clip: bool) -> np.ndarray:
    """A map resized to the GT's ``shape`` with OpenCV interpolation ``how`` (half-pixel
    centres; MATLAB's ``imresize`` also antialiases when it shrinks). ``clip`` keeps a [0, 1]
    map in range after bicubic overshoot; physical maps are only kept >= 0."""
    import cv2

    flags = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
    flags.update(nearest=cv2.INTER_NEAREST, area=cv2.INTER_AREA)
    out = cv2.resize(np.asarray(m, np.float32), (int(shape[1]), int(shape[0])),
                     interpolation=flags[how])  # fmt: skip
    return np.clip(out, 0.0, 1.0) if clip else np.maximum(out, 0.0)


def _to_gt_shape(
    m: np.ndarray, gt: np.ndarray, how: str, clip: bool, kind: str, row: Any, pred_h5: Path
) -> np.ndarray:
    """``m`` (the ``kind`` map of manifest ``row``) at the shape of its ``gt``: unchanged when
    the shapes agree, else resized by :func:`_resize` with the protocol's ``how`` (an error
    when ``how`` is ``"none"``)."""
    if m.shape == gt.shape:
        return m
    if how == "none":
        raise PredictionError(
            f"{row.id}: {kind} map shape {m.shape} in {pred_h5} differs from GT shape "
            f"{gt.shape} in {row.gt}"
        )
    return _resize(m, gt.shape, how, clip=clip)


def _check_files(df: pd.DataFrame, manifest_csv: str | os.PathLike) -> None:
    """Every image and GT file of the scored rows exists (the manifest's own check, on the
    rows a protocol selects)."""
    cols = [c for c in (*REQUIRED[2:], *OPTIONAL) if c in df.columns]
    missing = [p for c in cols for p in df[c] if p and not Path(p).exists()]
    if missing:
        raise ManifestError(
            f"manifest {manifest_csv} references {len(missing)} missing file(s), e.g. {missing[:3]}"
        )


def row_provenance(attrs: dict[str, Any], method: str) -> dict[str, Any]:
    """What a prediction file's row is (:meth:`defocus.methods.base.Method.provenance`).

    Read from the file's ``provenance_json`` attribute (written by the predict stage); for
    released maps (device ``external``) :data:`EXTERNAL_PROVENANCE`; for an older file
    without the attribute, rebuilt from its ``config_json`` (method spec, parameters and
    checkpoint) and the method class.
    """
    if str(attrs.get("device", "")) == "external":
        return dict(EXTERNAL_PROVENANCE)
    if "provenance_json" in attrs:
        return json.loads(str(attrs["provenance_json"]))
    from defocus.methods.registry import get_method

    cfg = json.loads(str(attrs.get("config_json", "null")) or "null") or {}
    spec = str(cfg.get("method") or method)
    try:
        m = get_method(spec, cfg.get("params") or {})
    except KeyError:  # a name the registry does not know: nothing can be said of it
        return {k: "unknown" for k in ("implementation", "weights", "backbone_init", "training")}
    return m.provenance(cfg.get("checkpoint") or None)


def _image_size_text(heights: pd.Series, widths: pd.Series) -> str:
    sizes = sorted({(int(h), int(w)) for h, w in zip(heights, widths, strict=True)})
    if len(sizes) == 1:
        h, w = sizes[0]
        return f"{h}x{w}"
    return f"{len(sizes)} sizes, median {int(np.median(heights))}x{int(np.median(widths))} (HxW)"


def evaluate_file(
    pred_h5: str | os.PathLike,
    manifest_csv: str | os.PathLike,
    split: str = "test",
    protocol: dict[str, Any] | None = None,
    dataset: str | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Any]]:
    """Evaluate the maps of a prediction file on one split of a manifest.

    Parameters
    ----------
    pred_h5 : path
        Prediction file (see :mod:`defocus.io.predictions`).
    manifest_csv : path
        Dataset manifest; every row of ``split`` must have a ``gt`` mask.
    split : str
        Manifest split to evaluate.
    protocol : dict, optional
        Overrides of :data:`DEFAULT_PROTOCOL`; a preset's keys
        (:func:`defocus.evaluate.protocols.preset_protocol`) choose the images (``split``),
        the per-image normalisation, the resize policy and the GT rule.
    dataset : str, optional
        The dataset's name, which the protocol's ``split`` is keyed by (default: the
        prediction file's ``dataset`` attribute, else the manifest's folder name).

    Returns
    -------
    per_image : DataFrame
        One row per image (see :meth:`BinaryEvaluator.results`), plus ``seconds`` and, where
        continuous GT exists, ``defocus_mse`` and ``defocus_mae``.
    curves : dict of ndarray
        ``thresholds, precision, recall, f`` and per-image ``tp, fp, fn, ids``.
    summary : dict
        ``method, dataset, split, n_images, f_beta, f_beta_ci_low, f_beta_ci_high,
        f_beta_mean, f_beta_adaptive, mae, mae_ci_low, mae_ci_high, accuracy, iou,
        seconds_per_image, device, external, subset, n_missing, n_no_evidence, image_size,
        image_sizes, provenance, protocol, protocol_text, preset, metric, images,
        n_split_missing, accuracy_eq13, map`` and, with continuous GT, ``defocus_mse,
        defocus_mae, n_images_continuous``; with a ``coc`` GT column and the network's
        output ``net/{id}`` in unit ``coc/<max_coc>`` (DMENet's release SYNDOF units,
        :func:`defocus.evaluate.continuous.release_syndof_errors`, whatever the preset),
        ``net_mse, net_mae, n_images_net, net_unit`` (per image: ``net_mse, net_mae``); with
        ``sigma_levels`` and raw maps, ``f_beta_sigma, n_images_sigma`` (NaN / 0 without raw
        maps).

    Raises
    ------
    PredictionError
        If an id of the split is missing from the prediction file, or a map's size differs
        from its GT's (both sizes named).
    """
    proto = resolve_protocol(protocol)
    pred_h5 = Path(pred_h5)
    if dataset is None:
        dataset = Path(manifest_csv).parent.name
        if pred_h5.is_file():
            with h5py.File(pred_h5, "r") as f:
                dataset = str(f.attrs.get("dataset", dataset))
    # only the scored rows' files are checked
    rows = read_manifest(manifest_csv, check_files=False)
    df, split_missing = select_rows(rows, proto, dataset, split)
    _check_files(df, manifest_csv)
    if df.empty:
        raise ValueError(f"manifest {manifest_csv} has no rows in split {split!r}")
    if split_missing:
        log.warning(
            "%s: %d id(s) of split %s are not in manifest %s (scored without them), e.g. %s",
            dataset,
            len(split_missing),
            split_for(proto, dataset),
            manifest_csv,
            split_missing[:3],
        )
    no_gt = df["id"][df["gt"] == ""].tolist()
    if no_gt:
        raise ValueError(
            f"manifest {manifest_csv}: {len(no_gt)} {split} image(s) have no gt mask, "
            f"e.g. {no_gt[:5]}"
        )
    ev = BinaryEvaluator(
        beta2=proto["beta2"],
        n_thresholds=proto["n_thresholds"],
        positive=proto["positive"],
        fixed_threshold=proto["fixed_threshold"],
        adaptive_factor=proto["adaptive_factor"],
        averaging=proto["averaging"],
        gt_binarise=proto["gt_binarise"],
        eq13_alpha=proto["eq13_alpha"],
    )
    levels = sigma_levels(*proto["sigma_levels"]) if proto["sigma_levels"] else None
    sigma_tp: list[np.ndarray] = []
    sigma_fp: list[np.ndarray] = []
    sigma_fn: list[np.ndarray] = []
    has_defocus = "defocus" in df.columns
    seconds: list[float] = []
    cont_rows: dict[str, dict[str, float]] = {}
    has_coc = "coc" in df.columns
    net_rows: dict[str, dict[str, float]] = {}
    net_units: set[str] = set()
    if not pred_h5.is_file():
        raise PredictionError(f"prediction file not found: {pred_h5}")
    with h5py.File(pred_h5, "r") as f:
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        missing = [i for i in df["id"] if f"maps/{i}" not in f]
        subset = bool(attrs.get("subset", False))
        if missing and subset:
            # an import with allow_subset (defocus.external) lists the ids it has no map for
            declared = set(json.loads(str(attrs.get("missing_ids", "[]"))))
            if set(missing) <= declared:
                df = df[~df["id"].isin(declared)].reset_index(drop=True)
                missing = []
        if missing and split_for(proto, dataset) is not None and len(missing) < len(df):
            # a named split reaches beyond the predicted images (predict runs on the test
            # split): the split's images that have a map are scored, the rest counted
            log.info(
                "%s: %d image(s) of split %s have no map in %s (scored without them)",
                dataset,
                len(missing),
                split_for(proto, dataset),
                pred_h5,
            )
            split_missing = split_missing + missing
            df = df[~df["id"].isin(set(missing))].reset_index(drop=True)
            missing = []
        if missing:
            raise PredictionError(
                f"prediction file {pred_h5} lacks maps for {len(missing)} of {len(df)} "
                f"{split_for(proto, dataset) or split} id(s) of manifest {manifest_csv}: "
                f"{missing[:5]}"
            )
        for row in df.itertuples(index=False):
            pred = f[f"maps/{row.id}"][()]
            gt = read_gray(row.gt)
            if proto["normalise"] == "mat2gray":
                pred = mat2gray(pred)
            pred = _to_gt_shape(pred, gt, proto["resize"], True, "prediction", row, pred_h5)
            ev.step(row.id, pred, gt)
            if levels is not None and f"raw/{row.id}" in f:
                raw = f[f"raw/{row.id}"][()]
                raw = _to_gt_shape(raw, gt, proto["resize"], False, "raw", row, pred_h5)
                counts = threshold_counts(raw, binarise_gt(gt, proto["gt_binarise"]), levels)
                for acc, c in zip((sigma_tp, sigma_fp, sigma_fn), counts, strict=True):
                    acc.append(c)
            key = f"seconds/{row.id}"
            seconds.append(float(f[key][()]) if key in f else math.nan)
            if has_defocus and row.defocus and f"raw/{row.id}" in f:
                cont_rows[row.id] = continuous_errors(
                    f[f"raw/{row.id}"][()],
                    np.load(row.defocus),
                    clip=proto["continuous_clip"],
                    scale=proto["continuous_scale"],
                    crop=proto["continuous_crop"],
                )
            net_key = f"net/{row.id}"
            if has_coc and row.coc and net_key in f:
                unit = str(f[net_key].attrs.get("unit", ""))
                max_coc = net_unit_max_coc(unit)
                if max_coc is not None:
                    net_rows[row.id] = release_syndof_errors(
                        f[net_key][()], np.load(row.coc), max_coc
                    )
                    net_units.add(unit)

    per_image, curves = ev.results()
    per_image["seconds"] = seconds
    method_name = str(attrs.get("method", pred_h5.parent.name))
    provenance = row_provenance(attrs, method_name)
    no_evidence = per_image["id"][per_image["no_evidence"]].tolist()
    # a reference row may be constant by definition (every pixel blurred): no warning
    for image_id in no_evidence if provenance.get("implementation") != "reference" else []:
        log.warning(
            "%s: the map of %s in %s is constant: the method found no evidence on this image "
            "(scored as undecided; per-image column no_evidence)",
            method_name,
            image_id,
            pred_h5,
        )
    if cont_rows:
        per_image["defocus_mse"] = [cont_rows.get(i, {}).get("mse", math.nan) for i in ev.ids]
        per_image["defocus_mae"] = [cont_rows.get(i, {}).get("mae", math.nan) for i in ev.ids]
    if net_rows:
        per_image["net_mse"] = [net_rows.get(i, {}).get("mse", math.nan) for i in ev.ids]
        per_image["net_mae"] = [net_rows.get(i, {}).get("mae", math.nan) for i in ev.ids]

    counts = ev.counts()
    boot = {"n_resamples": proto["n_bootstrap"], "seed": proto["seed"], "level": proto["ci_level"]}
    if proto["n_bootstrap"] > 0:
        fb = bootstrap_f_beta(counts, proto["averaging"], proto["beta2"], **boot)
        mae = bootstrap_mean(per_image["mae"].to_numpy(), **boot)
    else:  # no resamples: the estimates without intervals
        fb = BootstrapCI(f_beta(counts, proto["averaging"], proto["beta2"]), math.nan, math.nan)
        mae = BootstrapCI(float(per_image["mae"].mean()), math.nan, math.nan)
    scalars = ev.summary()
    finite_sec = [s for s in seconds if math.isfinite(s)]
    summary: dict[str, Any] = {
        "method": method_name,
        "dataset": str(attrs.get("dataset", pred_h5.stem)),
        "split": split,
        "n_images": len(ev),
        "f_beta": fb.estimate,
        "f_beta_ci_low": fb.low,
        "f_beta_ci_high": fb.high,
        "f_beta_mean": scalars["f_beta_mean"],
        "f_beta_adaptive": scalars["f_beta_adaptive"],
        "mae": mae.estimate,
        "mae_ci_low": mae.low,
        "mae_ci_high": mae.high,
        "accuracy": scalars["accuracy"],
        "iou": scalars["iou"],
        "accuracy_eq13": scalars["accuracy_eq13"],
        "map": scalars["map"],
        "preset": proto["preset"],
        "metric": proto["metric"],
        "images": images_text(proto, dataset, len(ev), len(split_missing)),
        "n_split_missing": len(split_missing),
        # per-id timings of the evaluated split where stored, else the file's mean
        "seconds_per_image": (
            float(np.mean(finite_sec))
            if finite_sec
            else float(attrs.get("seconds_per_image", math.nan))
        ),
        "device": str(attrs.get("device", "")),
        # released maps scored by defocus.external (device "external"), maybe on a subset
        "external": str(attrs.get("device", "")) == "external",
        "subset": subset,
        "n_missing": int(attrs.get("n_missing", 0)),
        "n_no_evidence": len(no_evidence),
        "provenance": provenance,
        "image_size": _image_size_text(per_image["height"], per_image["width"]),
        "image_sizes": json.loads(attrs["image_sizes"]) if "image_sizes" in attrs else None,
        "config_hash": str(attrs.get("config_hash", "")),
        "prediction_file": str(pred_h5),
        "protocol": proto,
        "protocol_text": describe_protocol(**proto),
    }
    if levels is not None:
        summary["n_images_sigma"] = len(sigma_tp)
        summary["f_beta_sigma"] = math.nan
        if sigma_tp:  # blurred positive: raw sigma >= level (DHDE Sec. 6)
            sigma_counts = Counts(
                *(np.stack(a) for a in (sigma_tp, sigma_fp, sigma_fn)),
                thresholds=levels.astype(np.float32),
            )
            summary["f_beta_sigma"] = f_beta(sigma_counts, proto["averaging"], proto["beta2"])
    if cont_rows:
        summary["n_images_continuous"] = len(cont_rows)
        summary["defocus_mse"] = float(per_image["defocus_mse"].mean())
        summary["defocus_mae"] = float(per_image["defocus_mae"].mean())
    if net_rows:  # mean over images of the per-image errors (release main.py line 543)
        summary["n_images_net"] = len(net_rows)
        summary["net_mse"] = float(per_image["net_mse"].mean())
        summary["net_mae"] = float(per_image["net_mae"].mean())
        summary["net_unit"] = ", ".join(sorted(net_units))
    return per_image, curves, summary


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def to_jsonable(x: Any) -> Any:
    """``x`` with numpy values as Python ones and non-finite floats as None (JSON null)."""
    return _jsonable(x)


def write_outputs(
    per_image_df: pd.DataFrame,
    curves: dict[str, np.ndarray],
    summary: dict[str, Any],
    metrics_csv: str | os.PathLike,
    curves_npz: str | os.PathLike,
    summary_json: str | os.PathLike,
) -> None:
    """Write per-image CSV, curves NPZ (no pickles) and summary JSON, each atomically.

    Non-finite floats in the summary are written as ``null``.
    """
    with atomic_path(metrics_csv) as tmp:
        per_image_df.to_csv(tmp, index=False)
    with atomic_path(curves_npz, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in curves.items()})
    with atomic_path(summary_json) as tmp:
        tmp.write_text(json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n")
