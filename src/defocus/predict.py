"""Run a method over a manifest split (the predict rule) or over a user's images (the CLI).

Large photos
------------
Every method's time and memory grow with the pixel count (``lbp`` needs ~2.3 GB and ~1 min
at 2560x1920), so prediction follows one declared policy, :data:`DEFAULT_MAX_SIDE`: an image
whose longer side exceeds ``max_side`` is shrunk (area interpolation, aspect ratio kept) until
its longer side is ``max_side``, the method runs on the shrunk image and its map is resized
back to the input's size (bilinear). Physical maps (sigma / CoC in pixels) are multiplied by
the inverse of the shrink factor so they stay in pixels of the input. ``max_side = 0`` runs at
full resolution. The prediction file records ``max_side`` in its config and the ids that were
shrunk in the attribute ``resized_ids``; ``defocus predict`` prints each shrunk file.

Timing
------
The predict rule stores each image's wall-clock seconds of :func:`run_one` (the method and
the ``max_side`` resizing). The first prediction of a process also pays one-off costs (lazy
imports, numba compilation, caches filled on first use, torch's first forward), so
:func:`predict_manifest` first predicts the split's first image once, untimed, and then times
every image, that one included: every stored time is a warm one. The prediction file says so
in its attribute ``timing`` (:data:`TIMING`) and keeps the warm-up's seconds in
``warmup_seconds``. Methods' predictions do not depend on what was predicted before, so the
maps are those of a run without the warm-up.

Output names of ``defocus predict``
-----------------------------------
A map is written as ``OUT/<stem>.png``. When two inputs share a stem (``photo.jpg`` and
``photo.png``), or a map would replace one of the inputs, that input's map keeps the input's
extension in its name: ``OUT/photo.jpg.png``. A folder that holds inputs is refused as
``OUT`` unless ``allow_input_folder`` is set; then every map keeps its input's extension
(``photo.jpg.png``), so no image of that folder is written over.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from defocus.config import DEFAULT_MAX_SIDE
from defocus.evaluate.metrics import is_constant
from defocus.io.image import ImageError, map_to_uint8, read_image, write_image
from defocus.io.manifest import read_manifest
from defocus.io.predictions import PredictionWriter
from defocus.methods.base import Method, MethodError, minmax_normalise
from defocus.methods.registry import get_method, method_class, parse_name

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

#: the ``timing`` attribute of prediction files: how ``seconds/{id}`` were measured
TIMING = "per image, after one untimed warm-up prediction of the first image"
#: ... and without the warm-up (``predict_manifest(..., warmup=False)``)
TIMING_COLD = "per image, no warm-up: the first image's time includes one-off initialisation"


class PredictBatchError(RuntimeError):
    """Some inputs of a ``defocus predict`` batch failed; every good map was still written.

    ``failed`` lists ``(path, message)``, ``written`` the maps that were written.
    """

    def __init__(self, failed: list[tuple[Path, str]], written: list[Path]) -> None:
        self.failed = failed
        self.written = written
        lines = "\n".join(f"  {p}: {msg}" for p, msg in failed)
        super().__init__(f"{len(failed)} input(s) failed:\n{lines}")


def checkpoint_params(checkpoint: str | os.PathLike, spec: str) -> dict[str, Any]:
    """The method parameters a checkpoint of ``spec`` was trained with ({} when none saved).

    Raises :class:`MethodError` when the checkpoint records another method, naming both.
    Only learned methods' checkpoints written by :func:`defocus.train.loop.finalize` (or the
    training loop) carry parameters; other files (e.g. a ``.caffemodel``) give ``{}``.
    """
    path = Path(checkpoint)
    if path.suffix.lower() not in {".pt", ".pth"} or not path.is_file():
        return {}
    from defocus.train.loop import load_checkpoint

    try:
        state = load_checkpoint(path)
    except RuntimeError as e:
        raise MethodError(str(e)) from None
    if not isinstance(state, dict):
        return {}
    base = parse_name(spec)[0]
    saved_method = state.get("method") or state.get("config", {}).get("method")
    if saved_method and parse_name(str(saved_method))[0] != base:
        raise MethodError(
            f"checkpoint {path} belongs to method {saved_method!r}, not {base!r}; "
            f"use --method {parse_name(str(saved_method))[0]} or that method's checkpoint"
        )
    saved = state.get("params") or state.get("config", {}).get("params") or {}
    return dict(saved) if isinstance(saved, dict) else {}


def build_method(
    spec: str, params: dict[str, Any] | None, checkpoint: str | os.PathLike | None, device: str
) -> Method:
    """Instantiate ``spec`` with ``params``, set its device and load its checkpoint.

    A learned method's network is built from the parameters saved in its checkpoint; the
    given ``params`` (and the spec's overrides) win for every other key, and a given
    network-shape parameter that contradicts the checkpoint is an error (raised by the
    method's ``load``).
    """
    from defocus.config import resolve_device

    cls = method_class(parse_name(spec)[0])
    merged = dict(params or {})
    if checkpoint and cls.learned:
        saved = checkpoint_params(checkpoint, spec)
        explicit = {**merged, **parse_name(spec)[1]}
        merged = {
            **{k: v for k, v in saved.items() if k in cls.defaults and k not in explicit},
            **merged,
        }
    method = get_method(spec, merged)
    # only learned methods use torch: classic ones skip its ~3 s import
    method.device = resolve_device(device) if method.learned else "cpu"
    try:
        method.load(Path(checkpoint) if checkpoint else None)
    except RuntimeError as e:
        if "state_dict" not in str(e):
            raise
        # torch lists every missing / unexpected key (~150 for a foreign checkpoint): one line
        raise MethodError(
            f"checkpoint {checkpoint} does not fit the {spec} network (its weights have other "
            f"names or shapes); pass a checkpoint trained for {parse_name(spec)[0]}, e.g. "
            f"results/models/{parse_name(spec)[0]}/model.pt"
        ) from None
    return method


def _shrink_factor(shape: tuple[int, ...], max_side: int) -> float:
    """The factor (< 1) that brings the longer side of ``shape`` to ``max_side``, else 1."""
    if max_side < 0 or 0 < max_side < 8:
        raise ValueError(f"max_side must be 0 (off) or an integer >= 8, got {max_side!r}")
    longest = max(shape[:2])
    return max_side / longest if max_side and longest > max_side else 1.0


def run_one(
    method: Method, image: np.ndarray, max_side: int = 0
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """``(blur_map, raw_or_None, seconds)`` for one RGB uint8 image; checks the map's size.

    With ``max_side`` > 0, an image whose longer side is larger is shrunk for the method and
    its maps are resized back (the module's "Large photos" policy).
    """
    blur, raw, _, seconds = run_one_net(method, image, max_side)
    return blur, raw, seconds


def run_one_net(
    method: Method, image: np.ndarray, max_side: int = 0
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float]:
    """:func:`run_one` plus the network's undecoded output of a method with a ``net_unit``
    (``predict_with_net``; the prediction file's ``net/{id}``), else None. An image shrunk
    for ``max_side`` gets None: the undecoded output is kept only at the input's size."""
    t0 = time.perf_counter()
    h, w = image.shape[:2]
    factor = _shrink_factor(image.shape, max_side)
    work = image
    if factor < 1.0:
        import cv2

        size = (max(8, round(w * factor)), max(8, round(h * factor)))
        work = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    net = None
    if method.has_raw and getattr(method, "net_unit", ""):
        raw, net = method.predict_with_net(work)
        raw, net = np.asarray(raw, dtype=np.float32), np.asarray(net, dtype=np.float32)
        blur = minmax_normalise(raw)
    elif method.has_raw:
        raw = np.asarray(method.predict_raw(work), dtype=np.float32)
        blur = minmax_normalise(raw)
    else:
        raw = None
        blur = np.asarray(method.predict(work), dtype=np.float32)
    if blur.shape != work.shape[:2]:
        raise ValueError(
            f"method {method.name!r} returned a map of shape {blur.shape} "
            f"for an image of shape {work.shape[:2]}"
        )
    if factor < 1.0:
        import cv2

        blur = np.clip(cv2.resize(blur, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        if raw is not None:  # pixels of the shrunk image -> pixels of the input
            scale_back = w / work.shape[1]
            raw = cv2.resize(raw, (w, h), interpolation=cv2.INTER_LINEAR) * scale_back
        net = None
    seconds = time.perf_counter() - t0
    return blur, raw, net, seconds


def predict_manifest(
    spec: str,
    params: dict[str, Any] | None,
    manifest_path: str | os.PathLike,
    out_h5: str | os.PathLike,
    split: str = "test",
    device: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    dataset: str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    warmup: bool = True,
) -> Path:
    """Predict every image of ``split`` and write the prediction file atomically.

    With ``warmup`` (the default), the first image is predicted once, untimed, before the
    timed predictions of all images (module docstring, "Timing").
    """
    rows = read_manifest(manifest_path, split=split)
    if rows.empty:
        raise ValueError(f"{manifest_path} has no images in split {split!r}")
    method = build_method(spec, params, checkpoint, device)
    warmup_seconds = math.nan
    if warmup:
        first = rows.iloc[0]
        _, _, warmup_seconds = run_one(method, read_image(first.image), max_side)
        log.info("%s: untimed warm-up on %s took %.2f s", spec, first.id, warmup_seconds)
    dataset = dataset or Path(manifest_path).parent.name
    config = {
        "method": spec,
        "params": method.params,
        "checkpoint": str(checkpoint or ""),
        "max_side": int(max_side),
    }
    resized = []
    with PredictionWriter(
        out_h5,
        spec,
        dataset,
        config=config,
        device=method.device,
        raw_unit=method.raw_unit,
        net_unit=getattr(method, "net_unit", ""),
    ) as w:
        for row in tqdm(rows.itertuples(), total=len(rows), desc=f"{spec} on {dataset}"):
            image = read_image(row.image)
            if _shrink_factor(image.shape, max_side) < 1.0:
                resized.append(row.id)
                log.info("%s: %dx%d shrunk to max_side %d", row.id, *image.shape[1::-1], max_side)
            blur, raw, net, seconds = run_one_net(method, image, max_side)
            if is_constant(blur) and not method.reference:
                log.warning(
                    "%s found no evidence on %s (%s): constant map", spec, row.id, row.image
                )
            w.add(row.id, blur, seconds, raw=raw, net=net)
        w.attrs["max_side"] = int(max_side)
        w.attrs["timing"] = TIMING if warmup else TIMING_COLD
        w.attrs["warmup_seconds"] = float(warmup_seconds)
        # what the row is and what was loaded (implementation, weights, backbone_init, ...)
        prov = method.provenance(checkpoint)
        w.attrs.update({"provenance_json": json.dumps(prov), **prov})
        w.attrs["resized_ids"] = ",".join(map(str, resized))
    log.info("wrote %s (%d images, %d shrunk)", out_h5, len(rows), len(resized))
    return Path(out_h5)


def _is_hidden(p: Path) -> bool:
    """Hidden files: dotfiles, incl. macOS AppleDouble ``._name`` and ``.DS_Store``."""
    return p.name.startswith(".")


def collect_images(
    paths: Iterable[str | os.PathLike], missing: list[tuple[Path, str]] | None = None
) -> list[Path]:
    """Files and folders (non-recursive) to a sorted list of image files, without repeats.

    Hidden files in folders (``._photo.jpg``, ``.DS_Store``) are skipped. A path that does not
    exist is appended to ``missing`` as ``(path, message)`` when a list is given, else raises
    :class:`FileNotFoundError`.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                q
                for q in p.iterdir()
                if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file() and not _is_hidden(q)
            )
        elif p.is_file():
            found = [p]
        else:
            if missing is None:
                raise FileNotFoundError(f"no such image or folder: {p}")
            missing.append((p, "no such file or folder"))
            continue
        for q in found:
            if q.resolve() not in seen:
                seen.add(q.resolve())
                out.append(q)
    if not out and not missing:
        raise FileNotFoundError("no images found in the given paths")
    return out


def output_names(
    images: list[Path], out_dir: Path, keep_extension: bool = False
) -> dict[Path, Path]:
    """Map each input to its output base path (no suffix) under ``out_dir``.

    ``<stem>`` normally; the input's full file name (``photo.jpg``) when its stem is shared
    with another input, when ``<stem>.png`` would be one of the inputs, or always with
    ``keep_extension`` (an output folder that holds inputs). Raises
    :class:`ValueError` when two inputs would still share an output (same file name in two
    folders), naming both.
    """
    inputs = {p.resolve() for p in images}
    stems: dict[str, int] = {}
    for p in images:
        stems[p.stem.lower()] = stems.get(p.stem.lower(), 0) + 1
    names: dict[Path, Path] = {}
    owner: dict[str, Path] = {}
    for p in images:
        base = out_dir / p.stem
        clash = base.with_name(base.name + ".png").resolve() in inputs
        if keep_extension or stems[p.stem.lower()] > 1 or clash:
            base = out_dir / p.name
        key = base.name.lower()  # case-insensitive file systems (macOS, Windows)
        if key in owner:
            raise ValueError(
                f"inputs {owner[key]} and {p} would both be written as {base}.png; "
                "run them with different --out folders"
            )
        owner[key] = p
        if base.with_name(base.name + ".png").resolve() in inputs:
            raise ValueError(f"the map of {p} would replace the input {base}.png")
        names[p] = base
    return names


def predict_files(
    spec: str,
    images: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    params: dict[str, Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
    raw: bool = False,
    max_side: int = DEFAULT_MAX_SIDE,
    allow_input_folder: bool = False,
    progress: bool = True,
) -> list[Path]:
    """``defocus predict``: write ``out_dir/<stem>.png`` (255 = blurred) per image.

    With ``raw``, the physical map (or the blur map for methods without one) is saved as
    ``<stem>.npy`` too. Output names, the refusal of a folder that holds inputs and the
    ``max_side`` policy are described in the module docstring. Unreadable inputs and inputs
    on which the method fails do not stop the batch: every other map is written, then
    :class:`PredictBatchError` lists the failures.
    """
    out_dir = Path(out_dir)
    failed: list[tuple[Path, str]] = []
    files = collect_images(images, missing=failed)
    here = [p for p in files if out_dir.is_dir() and p.resolve().parent == out_dir.resolve()]
    if here and not allow_input_folder:
        raise ValueError(
            f"--out {out_dir} holds {len(here)} of the input images (e.g. {here[0].name}); "
            "choose another output folder, or pass --allow-input-folder "
            "(inputs are still never written over)"
        )
    # next to inputs every map keeps its input's extension (photo.jpg -> photo.jpg.png), so
    # no image of that folder, input of this run or not, is ever replaced
    names = output_names(files, out_dir, keep_extension=bool(here))
    method = build_method(spec, params, checkpoint, device)
    written = []
    for path in tqdm(files, desc=spec, disable=not progress):
        try:
            image = read_image(path)
            if _shrink_factor(image.shape, max_side) < 1.0:
                h, w = image.shape[:2]
                log.warning(
                    "%s: %dx%d is larger than max_side %d: predicted on a shrunk copy, "
                    "map resized back",
                    path,
                    w,
                    h,
                    max_side,
                )
            blur, raw_map, _ = run_one(method, image, max_side)
        except (ImageError, ValueError, MethodError, OSError, MemoryError) as e:
            failed.append((path, str(e).splitlines()[0] if str(e) else type(e).__name__))
            continue
        except Exception as e:  # the method failed on this image (e.g. cv2.error): go on
            first = (str(e).strip().splitlines() or [""])[0]
            failed.append((path, f"{spec} failed: {type(e).__name__}: {first}"))
            log.debug("%s failed on %s", spec, path, exc_info=True)
            continue
        base = names[path]
        target = base.with_name(base.name + ".png")
        write_image(target, map_to_uint8(blur))
        if raw:
            from defocus.io.atomic import atomic_path

            with atomic_path(base.with_name(base.name + ".npy")) as tmp:
                np.save(tmp, raw_map if raw_map is not None else blur)
        written.append(target)
    if failed:
        raise PredictBatchError(failed, written)
    return written
