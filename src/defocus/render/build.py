"""Build a SYNDOF-style dataset folder and its manifest rows (Lee et al. CVPR'19, Sec. 3).

Layout under ``out_dir`` (one file per sample, each written atomically)::

    image/{id}.png     rendered (defocused) RGB
    gt/{id}.png        binary blur map, uint8, 255 = blurred (CoC > 1 px)
    depth/{id}.npy     float32 depth in metres used for rendering
    defocus/{id}.npy   float32 Gaussian sigma in px
    coc/{id}.npy       float32 quantised CoC in px
    sharp/{source}.png the sharp source image (uint8 RGB)
    params/{id}.json   camera parameters
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from defocus.io.atomic import atomic_path, write_text
from defocus.io.image import read_image, write_image
from defocus.render.scenes import fill_invalid_nearest
from defocus.render.syndof import render_sample


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, arr)


def _load_source(src: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of a source: ``image``/``depth_m``, or read from ``image_path``/``depth_path``."""
    if "image" in src and "depth_m" in src:
        return np.asarray(src["image"]), np.asarray(src["depth_m"])
    if "image_path" in src and "depth_path" in src:
        from defocus.io.depth import read_depth  # written alongside; imported only when needed

        image = read_image(src["image_path"])
        depth = read_depth(src["depth_path"], calib=src.get("calib_path"), kind=src.get("kind"))
        return image, fill_invalid_nearest(depth)
    raise ValueError(
        "a source needs 'name' and either 'image' + 'depth_m' arrays or 'image_path' + "
        f"'depth_path'; got keys {sorted(src)}"
    )


def assign_splits(names: list[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Whole sources go to ``train`` or ``test`` (no scene in both), seeded.

    ``round(test_fraction * n)`` sources are test, at least one when ``test_fraction > 0``
    and there are two or more sources.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    names = sorted(names)
    n_test = int(round(test_fraction * len(names)))
    if test_fraction > 0 and len(names) > 1:
        n_test = max(n_test, 1)
    n_test = min(n_test, len(names) - 1) if len(names) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(names))
    test = {names[i] for i in order[:n_test]}
    return {n: ("test" if n in test else "train") for n in names}


def build_syndof(
    sources: Iterable[Mapping],
    out_dir: str | os.PathLike,
    n_per_source: int = 1,
    seed: int = 0,
    camera_cfg: Mapping | None = None,
    backend: str = "numpy",
    test_fraction: float = 0.2,
    device=None,
    progress: bool = True,
    binary_coc_px: float = 1.0,
    fill: str = "regionfill",
) -> list[dict]:
    """Render ``n_per_source`` defocused samples of each source and write them to ``out_dir``.

    Parameters
    ----------
    sources : iterable of mapping
        Each has a unique ``name`` and either ``image`` (uint8 RGB) + ``depth_m`` arrays or
        ``image_path`` + ``depth_path`` (+ optional ``calib_path``, ``kind``), and optionally
        ``depth_scale`` and per-source camera overrides under ``camera``.
    out_dir : path
        Dataset folder (created).
    n_per_source : int or sequence of int
        Samples per source (each with a fresh camera draw), or one count per source (see
        :func:`defocus.render.compose.renders_per_source`).
    seed : int
        Seeds the split and every sample (``default_rng([seed, source_index, k])``, so a
        sample does not depend on the others).
    camera_cfg : mapping, optional
        Keyword arguments of :func:`defocus.render.physics.sample_camera`.
    backend : {"numpy", "torch"}
        Renderer backend; ``device`` is the torch device.
    test_fraction : float
        Fraction of sources (not samples) assigned to ``test``.
    progress : bool
        Show a tqdm progress bar.
    binary_coc_px : float
        Binary GT threshold on the CoC (px); see :func:`defocus.render.syndof.render_sample`.
    fill : {"regionfill", "normalized"}
        Background fill of the renderer; see :func:`defocus.render.syndof.render_sample`.

    Returns
    -------
    list of dict
        Manifest rows ``{id, split, image, gt, depth, defocus}`` with absolute paths, to be
        written with :func:`defocus.io.manifest.write_manifest`.
    """
    sources = list(sources)
    if np.ndim(n_per_source) == 0:
        counts = [int(n_per_source)] * len(sources)
    else:
        counts = [int(c) for c in n_per_source]
        if len(counts) != len(sources):
            raise ValueError(f"{len(counts)} render counts for {len(sources)} sources")
    if any(c < 1 for c in counts):
        raise ValueError(f"n_per_source must be >= 1, got {n_per_source}")
    names = [str(s.get("name", "")) for s in sources]
    if any(not n or "/" in n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"sources need unique, non-empty names without '/', got {names}")
    splits = assign_splits(names, test_fraction, seed)
    out = Path(out_dir).resolve()
    cfg = dict(camera_cfg or {})

    from tqdm.auto import tqdm

    rows = []
    bar = tqdm(total=sum(counts), desc="render SYNDOF", disable=not progress)
    for si, src in enumerate(sources):
        image, depth = _load_source(src)
        # the sharp source, once per source: the reference for figures and for methods that
        # need an all-in-focus image
        write_image(out / "sharp" / f"{names[si]}.png", image)
        src_cfg = dict(cfg, **dict(src.get("camera", {})))
        if "depth_scale" in src:
            src_cfg["depth_scale"] = float(src["depth_scale"])
        for k in range(counts[si]):
            rng = np.random.default_rng([seed, si, k])
            sample = render_sample(
                image,
                depth,
                rng,
                backend=backend,
                device=device,
                binary_coc_px=binary_coc_px,
                fill=fill,
                **src_cfg,
            )
            sid = f"{names[si]}_{k:03d}"
            paths = {
                "image": out / "image" / f"{sid}.png",
                "gt": out / "gt" / f"{sid}.png",
                "depth": out / "depth" / f"{sid}.npy",
                "defocus": out / "defocus" / f"{sid}.npy",
                "coc": out / "coc" / f"{sid}.npy",
                "params": out / "params" / f"{sid}.json",
            }
            write_image(paths["image"], sample["blurred"])
            write_image(paths["gt"], sample["binary"].astype(np.uint8) * 255)
            _save_npy(paths["depth"], sample["depth"])
            _save_npy(paths["defocus"], sample["sigma"])
            _save_npy(paths["coc"], sample["coc"])
            params = dict(sample["params"], source=names[si], sample=k, seed=int(seed))
            write_text(paths["params"], json.dumps(params, indent=2, sort_keys=True) + "\n")
            rows.append(
                {
                    "id": sid,
                    "split": splits[names[si]],
                    "image": str(paths["image"]),
                    "gt": str(paths["gt"]),
                    "depth": str(paths["depth"]),
                    "defocus": str(paths["defocus"]),
                }
            )
            bar.update(1)
    bar.close()
    return rows
