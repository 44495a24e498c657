"""Depth sources for SYNDOF (DATASETS.md sections 6-8): Sintel ``.dpt`` depth, Middlebury
2014 disparity with its calibration, SYNTHIA depth PNGs; each row is an image with
``depth/{id}.npy`` in metres and no GT mask.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from defocus.datasets.readers.common import DatasetLayoutError, _check_same_size, _files, _save_npy
from defocus.io.depth import read_depth, read_dpt, read_middlebury_calib
from defocus.io.image import read_image

log = logging.getLogger(__name__)


def _depth_row(id_: str, img_path: Path, depth: np.ndarray, depth_src: Path, out_dir: Path):
    img = read_image(img_path)
    _check_same_size(img_path, img.shape, depth_src, depth.shape)
    out = out_dir / "depth" / f"{id_}.npy"
    _save_npy(out, depth)
    return {
        "id": id_,
        "split": "train",
        "image": str(img_path.resolve()),
        "gt": "",
        "depth": str(out),
    }


def _in_scenes(name: str, scenes) -> bool:
    """True when no scene subset is given or ``name`` (or its part before '-') is in it."""
    return not scenes or name in scenes or name.split("-")[0] in scenes


def _read_sintel(
    root: Path, out_dir: Path, polarity: str, render_pass: str = "clean", scenes=None, **_
) -> tuple[list[dict], list[float]]:
    rows = []
    dpts = [
        p
        for p in _files(root, (".dpt",))
        if p.parent.parent.name == "depth" and _in_scenes(p.parent.name, scenes)
    ]
    if not dpts:
        raise DatasetLayoutError(f"Sintel: no training/depth/<scene>/*.dpt under {root}")
    for dpt in dpts:
        scene = dpt.parent.name
        img = dpt.parent.parent.parent / render_pass / scene / f"{dpt.stem}.png"
        if not img.is_file():
            raise DatasetLayoutError(f"Sintel: no {render_pass} image {img} for depth {dpt}")
        # Sintel depth is in scene units, taken as metres as SYNDOF does (section 6).
        rows.append(_depth_row(f"{scene}_{dpt.stem}", img, read_dpt(dpt), dpt, out_dir))
    return rows, []


def _read_middlebury(root: Path, out_dir: Path, polarity: str, scenes=None, **_):
    rows = []
    calibs = sorted(p for p in root.rglob("calib.txt") if _in_scenes(p.parent.name, scenes))
    if not calibs:
        raise DatasetLayoutError(f"Middlebury: no <Scene>-perfect/calib.txt under {root}")
    for calib_path in calibs:
        scene = calib_path.parent
        img, disp = scene / "im0.png", scene / "disp0.pfm"
        for need in (img, disp):
            if not need.is_file():
                raise DatasetLayoutError(f"Middlebury: {need} is missing (scene {scene})")
        depth = read_depth(disp, calib=read_middlebury_calib(calib_path))
        rows.append(_depth_row(scene.name, img, depth, disp, out_dir))
    return rows, []


def _read_synthia(
    root: Path,
    out_dir: Path,
    polarity: str,
    camera: str | None = "Stereo_Right/Omni_F",
    scenes=None,
    **_,
):
    rows = []
    for dp in _files(root, (".png",)):
        parts = dp.relative_to(root).parts
        if "Depth" not in parts[:-1]:
            continue
        k = len(parts) - 1 - parts[::-1].index("Depth")  # last 'Depth' component
        cam = "/".join(parts[k + 1 : -1])
        if camera and cam != camera:
            continue
        rgb = root.joinpath(*parts[:k], "RGB", *parts[k + 1 :])
        if not rgb.is_file():
            raise DatasetLayoutError(f"SYNTHIA: no RGB frame {rgb} for depth {dp}")
        seq = parts[k - 1] if k >= 1 else root.name
        if not _in_scenes(seq, scenes):
            continue
        id_ = "_".join([seq, *parts[k + 1 : -1], dp.stem])
        rows.append(_depth_row(id_, rgb, read_depth(dp, kind="synthia"), dp, out_dir))
    if not rows:
        raise DatasetLayoutError(
            f"SYNTHIA: no <SEQ>/Depth/{camera or '<camera>'}/*.png under {root}"
        )
    return rows, []
