"""Glue between the config's ``syndof`` section and the renderer (used by the Snakemake rules).

* :func:`camera_kwargs` maps the schema's camera keys to ``sample_camera``;
* :func:`collect_sources` turns ``sources: [demo_motorcycle, demo_procedural, sintel, ...]`` into
  the source dicts of :func:`~defocus.render.build.build_syndof`;
* :func:`render_dataset` renders and writes the manifest;
* :func:`figure_from_manifest` draws the SYNDOF figure from a rendered dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defocus.io.image import read_gray, read_image
from defocus.io.manifest import read_manifest, write_manifest

#: schema key -> sample_camera keyword
_CAMERA_KEYS = {
    "focal_lengths_mm": "focal_lengths_mm",
    "focal_length_weights": "focal_length_weights",
    "max_coc": "max_coc_px",
    "sigma_formula": "sigma_formula",
    "min_layers": "min_layers",
    "max_layers": "max_layers",
    "max_resample": "max_resamples",
}

#: SYNDOF generator's depth scale per source kind: Sintel depth x1000, others x10, both to
#: millimetre-like units before the 5f shift (DATASETS.md 5-8). Our readers already give metres,
#: so every source is rendered at scale 1 and the generator's unit choice is moot.
DEPTH_SCALE = {"sintel": 1.0, "synthia": 1.0, "middlebury2014": 1.0}


def camera_kwargs(camera: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``sample_camera`` from a schema-validated ``camera`` mapping."""
    unknown = set(camera) - set(_CAMERA_KEYS)
    if unknown:
        raise ValueError(f"unknown camera key(s) {sorted(unknown)}; valid: {sorted(_CAMERA_KEYS)}")
    return {_CAMERA_KEYS[k]: v for k, v in camera.items()}


def collect_sources(
    cfg: Mapping[str, Any],
    seed: int,
    depth_manifests: Mapping[str, str | os.PathLike] | None = None,
) -> list[dict[str, Any]]:
    """Source dicts for ``build_syndof`` from one ``syndof.<name>`` config entry.

    ``depth_manifests`` maps the real source names (``sintel``, ``synthia``,
    ``middlebury2014``) to their manifests, whose ``depth`` column holds ``.npy`` metres.
    """
    from defocus.datasets.demo import resize_max_side
    from defocus.render.scenes import demo_sources

    depth_manifests = dict(depth_manifests or {})
    max_side = cfg.get("max_side")
    out: list[dict[str, Any]] = []
    wanted = list(cfg["sources"])
    if "demo_motorcycle" in wanted or "demo_procedural" in wanted:
        side = max_side or 256
        # procedural scenes keep the 3:4 aspect of the scikit-image photographs
        size_hw = (int(round(side * 0.75)), int(side))
        out += demo_sources(
            n_procedural=int(cfg.get("n_procedural", 4)) if "demo_procedural" in wanted else 0,
            seed=seed,
            max_side=max_side,
            size_hw=size_hw,
            include_motorcycle="demo_motorcycle" in wanted,
        )
    for name in wanted:
        if name.startswith("demo_"):
            continue
        if name not in depth_manifests:
            raise ValueError(f"SYNDOF source {name!r} needs its manifest (results/data/{name})")
        rows = read_manifest(depth_manifests[name])
        if "depth" not in rows.columns:
            raise ValueError(f"{depth_manifests[name]} has no depth column")
        for r in rows.itertuples():
            src: dict[str, Any] = {"name": f"{name}_{r.id}", "depth_scale": DEPTH_SCALE[name]}
            mb = cfg.get("middlebury") or {}
            if name == "middlebury2014" and mb:
                from defocus.render.compose import middlebury_as_generator

                image, depth = middlebury_as_generator(
                    read_image(r.image),
                    np.load(r.depth),
                    scale=float(mb.get("scale", 0.25)),
                    step_m=float(mb.get("depth_step_m", 0.01)),
                )
                if max_side:
                    import cv2

                    image = resize_max_side(image, max_side)
                    depth = cv2.resize(depth, image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                src.update(image=image, depth_m=depth)
            elif max_side:
                image = resize_max_side(read_image(r.image), max_side)
                depth = np.load(r.depth).astype(np.float32)
                import cv2

                depth = cv2.resize(depth, image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                src.update(image=image, depth_m=depth)
            else:
                src.update(image_path=r.image, depth_path=r.depth)
            out.append(src)
    if cfg.get("n_sources"):
        out = select_sources(out, int(cfg["n_sources"]))
    return out


def select_sources(sources: list[dict[str, Any]], n_sources: int) -> list[dict[str, Any]]:
    """The dissimilar frames among ``sources``, at most ``n_sources`` of them.

    The threshold on the thumbnail difference is the smallest that keeps at most
    ``n_sources`` frames (:func:`defocus.render.compose.difference_for_count`); it and the
    count kept are logged.
    """
    from defocus.render.compose import difference_for_count, select_dissimilar, thumbnail

    if len(sources) <= n_sources:
        return sources
    names = [s["name"] for s in sources]
    thumbs = [
        thumbnail(s["image"] if "image" in s else read_image(s["image_path"])) for s in sources
    ]
    d = difference_for_count(names, thumbs, n_sources)
    kept = select_dissimilar(names, thumbs, d)
    print(
        f"SYNDOF sources: kept {len(kept)} of {len(sources)} frames (thumbnail difference "
        f">= {d:.4f})",
        flush=True,
    )
    return [sources[i] for i in kept]


def render_dataset(
    cfg: Mapping[str, Any],
    out_manifest: str | os.PathLike,
    seed: int,
    depth_manifests: Mapping[str, str | os.PathLike] | None = None,
    device: str | None = None,
) -> Path:
    """Render one ``syndof.<name>`` entry into ``out_manifest``'s folder; returns the manifest."""
    from defocus.render.build import build_syndof
    from defocus.render.compose import renders_per_source

    out_manifest = Path(out_manifest)
    sources = collect_sources(cfg, seed, depth_manifests)
    n_per_source = int(cfg["n_per_source"])
    if cfg.get("n_renders"):
        n_per_source = renders_per_source(len(sources), int(cfg["n_renders"]), seed)
    rows = build_syndof(
        sources,
        out_manifest.parent,
        n_per_source=n_per_source,
        seed=seed,
        camera_cfg=camera_kwargs(cfg.get("camera", {})),
        backend=cfg.get("backend", "numpy"),
        test_fraction=float(cfg["test_fraction"]),
        device=device,
        binary_coc_px=float(cfg.get("binary_coc_px", 1.0)),
        fill=str(cfg.get("fill", "regionfill")),
    )
    write_manifest(rows, out_manifest)
    return out_manifest


def figure_from_manifest(
    manifest_csv: str | os.PathLike, out_png: str | os.PathLike, n: int = 4
) -> None:
    """The SYNDOF figure of the first ``n`` samples (one per source where possible)."""
    from defocus.render.figures import make_figure

    rows = read_manifest(manifest_csv)
    root = Path(manifest_csv).parent
    picked: list[Any] = []
    seen: set[str] = set()
    for r in rows.itertuples():  # first sample of each source, then the rest
        params = json.loads((root / "params" / f"{r.id}.json").read_text())
        if params["source"] not in seen:
            seen.add(params["source"])
            picked.append((r, params))
    picked = picked[:n]
    samples: list[dict[str, Any]] = []
    for r, params in picked:
        samples.append(
            {
                "image": read_image(root / "sharp" / f"{params['source']}.png"),
                "blurred": read_image(r.image),
                "depth": np.load(r.depth),
                "sigma": np.load(r.defocus),
                "binary": read_gray(r.gt) >= 128,
                "params": params,
            }
        )
    make_figure(samples, out_png)


def depth_manifest_map(sources: Sequence[str], manifests: Sequence[str]) -> dict[str, str]:
    """Pair the real source names with the rule's depth manifests (same order)."""
    real = [s for s in sources if not s.startswith("demo_")]
    if len(real) != len(manifests):
        raise ValueError(f"expected {len(real)} depth manifests for {real}, got {list(manifests)}")
    return dict(zip(real, manifests, strict=True))
