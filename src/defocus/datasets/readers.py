"""Readers: normalise each dataset's source layout into ``out_dir/manifest.csv``.

The manifest contract is in :mod:`defocus.io.manifest` (``id,split,image,gt[,depth,
defocus]``). Images are referenced in place (absolute paths); everything derived is written
under ``out_dir``:

* ``gt/{id}.png``: binary mask, uint8 {0, 255}, **255 = blurred**, converted from the
  dataset's declared polarity (registry ``gt_polarity``, or ``polarity_override``);
* ``depth/{id}.npy``: float32 depth in metres (``nan`` = invalid);
* ``defocus/{id}.npy``: float32 per-pixel defocus (RTF).

Layout facts are cited from ``/work/shared/DATASETS.md`` by section.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np

from defocus.datasets.registry import get_spec
from defocus.io.atomic import atomic_path
from defocus.io.depth import read_depth, read_dpt, read_middlebury_calib
from defocus.io.image import read_gray, read_image, write_image
from defocus.io.manifest import write_manifest

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
POLARITIES = ("white_blurred", "white_sharp")


class DatasetLayoutError(ValueError):
    """A dataset folder does not have the expected files (missing GT, size mismatch, ...)."""


class PolarityWarning(UserWarning):
    """A GT mask or a whole dataset looks as if its declared polarity were flipped."""


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _files(root: Path, exts: Iterable[str]) -> list[Path]:
    """All files under ``root`` whose extension (case-insensitive) is in ``exts``, sorted."""
    exts = {e.lower() for e in exts}
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in exts and p.is_file() and not p.name.startswith(".")
    )


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(arr, np.float32))


def _check_same_size(img_path: Path, img_shape, other_path: Path, other_shape) -> None:
    if tuple(img_shape[:2]) != tuple(other_shape[:2]):
        raise DatasetLayoutError(
            f"size mismatch: image {img_path} is {img_shape[1]}x{img_shape[0]} (WxH) but "
            f"{other_path} is {other_shape[1]}x{other_shape[0]}"
        )


def to_blurred_mask(gt: np.ndarray, polarity: str) -> np.ndarray:
    """Binarise a GT mask and return it as uint8 {0, 255} with **255 = blurred**.

    Parameters
    ----------
    gt : numpy.ndarray
        HxW mask of any integer/bool/float dtype; values above half the dtype's range (or
        above 0.5 for floats in [0, 1]) are "white".
    polarity : {"white_blurred", "white_sharp"}
        What white means in the source.
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    gt = np.asarray(gt)
    if gt.ndim == 3:
        gt = gt[..., 0]
    if gt.dtype == bool:
        white = gt
    elif np.issubdtype(gt.dtype, np.integer):
        white = gt > (np.iinfo(gt.dtype).max // 2)
    else:
        white = gt > 0.5
    blurred = white if polarity == "white_blurred" else ~white
    return np.where(blurred, 255, 0).astype(np.uint8)


def check_polarity(mask: np.ndarray, name: str = "") -> float:
    """Blurred fraction of a normalised mask (255 = blurred); warns when it is all one class.

    A mask that is entirely blurred or entirely sharp is legal (CUHK has a few) but is also
    what a wrong threshold or a wrong file gives, so it is reported as a
    :class:`PolarityWarning`.
    """
    frac = float(np.mean(np.asarray(mask) > 127))
    if frac in (0.0, 1.0):
        warnings.warn(
            f"GT mask {name or '(unnamed)'} is entirely {'blurred' if frac else 'sharp'}",
            PolarityWarning,
            stacklevel=2,
        )
    return frac


def check_dataset_polarity(fractions: Iterable[float], name: str, polarity: str) -> float:
    """Mean blurred fraction over a dataset; warns when it is below 0.5.

    In CUHK and DUT the blurred background is the large area of most images, so a mean
    blurred fraction < 0.5 after conversion suggests the declared polarity is flipped
    (DATASETS.md section 2 asks for this check on DUT's first download).
    """
    fr = np.asarray(list(fractions), np.float64)
    if fr.size == 0:
        return float("nan")
    mean = float(fr.mean())
    if mean < 0.5:
        warnings.warn(
            f"dataset {name}: with declared GT polarity {polarity!r} the mean blurred fraction "
            f"is {mean:.3f} < 0.5, yet backgrounds are mostly blurred in defocus datasets; the "
            "polarity may be flipped (set polarity_override / datasets."
            f"{name}.polarity to the other value if a look at a mask confirms it)",
            PolarityWarning,
            stacklevel=2,
        )
    return mean


def _mask_row(
    id_: str,
    split: str,
    img_path: Path,
    gt_path: Path,
    out_dir: Path,
    polarity: str,
    fractions: list[float],
) -> dict:
    """Convert one GT mask into ``out_dir/gt/{id}.png`` after checking sizes."""
    img = read_image(img_path)
    gt = read_gray(gt_path)
    _check_same_size(img_path, img.shape, gt_path, gt.shape)
    mask = to_blurred_mask(gt, polarity)
    fractions.append(check_polarity(mask, str(gt_path)))
    out = out_dir / "gt" / f"{id_}.png"
    write_image(out, mask)
    return {"id": id_, "split": split, "image": str(img_path.resolve()), "gt": str(out)}


# --------------------------------------------------------------------------------------
# CUHK (DATASETS.md sections 1 and 3)
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# DUT-DBD (DATASETS.md section 2)
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# RTF (DATASETS.md section 4)
# --------------------------------------------------------------------------------------


def _rtf_lut(conversion) -> np.ndarray | None:
    """Nx2 look-up table (col 0 = Gaussian sigma, col 1 = RTF value) or None."""
    if conversion is None:
        return None
    if isinstance(conversion, str | os.PathLike):
        from scipy.io import loadmat

        mat = loadmat(conversion)
        if "convertion" not in mat:  # DMENet's spelling (evaluation/RTF/convertion.mat)
            raise DatasetLayoutError(f"{conversion}: no variable 'convertion'")
        conversion = mat["convertion"]
    lut = np.asarray(conversion, np.float64)
    if lut.ndim != 2 or lut.shape[1] < 2:
        raise DatasetLayoutError(f"RTF conversion table must be Nx2, got shape {lut.shape}")
    return lut


def rtf_to_sigma(blur_map: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map RTF ``blurMap`` values to Gaussian sigma by nearest match in ``lut``.

    As DMENet ``evaluation/RTF/quantitative_RTF.m``: column 2 holds RTF values, column 1 the
    Gaussian sigma (DATASETS.md section 4).
    """
    rtf_vals = lut[:, 1]
    order = np.argsort(rtf_vals)
    sorted_vals = rtf_vals[order]
    b = np.asarray(blur_map, np.float64)
    idx = np.clip(np.searchsorted(sorted_vals, b), 1, len(sorted_vals) - 1)
    left, right = sorted_vals[idx - 1], sorted_vals[idx]
    idx = np.where(np.abs(b - left) <= np.abs(right - b), idx - 1, idx)
    return lut[order[idx], 0].astype(np.float32)


def _read_rtf(
    root: Path,
    out_dir: Path,
    polarity: str,
    noise_level: str = "0",
    threshold: float = 0.5,
    conversion=None,
    image_root: str | os.PathLike | None = None,
    **_,
) -> tuple[list[dict], list[float]]:
    from scipy.io import loadmat

    mats = [p for p in _files(root, (".mat",)) if p.name != "convertion.mat"]
    layered = [p for p in mats if p.parent.name == noise_level and p.parent.parent.name == "gt"]
    if layered:
        mats = layered
    elif any(p.parent.parent.name == "gt" for p in mats):
        raise DatasetLayoutError(f"RTF: no gt/{noise_level}/ folder under {root}")
    if not mats:
        raise DatasetLayoutError(f"RTF: no .mat ground truth under {root}")
    lut = _rtf_lut(conversion)
    if lut is None:
        log.warning(
            "RTF: no conversion table given; defocus/*.npy hold the raw blurMap values (RTF PSF "
            "scale), not Gaussian sigma. Pass conversion=<DMENet evaluation/RTF/convertion.mat>."
        )
    img_root = Path(image_root) if image_root else root
    images: dict[str, list[Path]] = {}
    for p in _files(img_root, IMAGE_EXTS):
        if "out" in {q.lower() for q in p.relative_to(img_root).parts[:-1]}:
            continue  # method results (RTF/out/<method>/...) are not inputs
        images.setdefault(p.stem.lower(), []).append(p)
    rows, fractions = [], []
    for m in mats:
        data = loadmat(m)
        if "blurMap" not in data:
            names = sorted(k for k in data if not k.startswith("__"))
            raise DatasetLayoutError(f"RTF: {m} has no variable 'blurMap' (has {names})")
        blur = np.asarray(data["blurMap"], np.float64)
        sigma = rtf_to_sigma(blur, lut) if lut is not None else blur.astype(np.float32)
        cands = images.get(m.stem.lower(), [])
        if not cands:
            raise DatasetLayoutError(
                f"RTF: no input image named {m.stem}.* for GT {m} under {img_root}; the "
                "DMENet GT zip has no images: unpack the author's Defocus_Blur_Dataset.zip and "
                "pass image_root"
            )
        if len(cands) > 1:  # e.g. one input per noise level: take the one of noise_level
            at_level = [c for c in cands if noise_level in c.relative_to(img_root).parts[:-1]]
            if len(at_level) != 1:
                raise DatasetLayoutError(
                    f"RTF: ambiguous input image for GT {m}: {[str(c) for c in cands]}; "
                    "pass image_root pointing at one noise level's images"
                )
            cands = at_level
        img_path = cands[0]
        img = read_image(img_path)
        _check_same_size(img_path, img.shape, m, sigma.shape)
        id_ = m.stem
        defocus = out_dir / "defocus" / f"{id_}.npy"
        _save_npy(defocus, sigma)
        # Binary GT for binary metrics: blurred where sigma > threshold (ours, documented in
        # build_manifest; not from the RTF or DMENet papers).
        mask = np.where(sigma > threshold, 255, 0).astype(np.uint8)
        fractions.append(check_polarity(mask, str(m)))
        gt = out_dir / "gt" / f"{id_}.png"
        write_image(gt, mask)
        rows.append(
            {
                "id": id_,
                "split": "test",
                "image": str(img_path.resolve()),
                "gt": str(gt),
                "defocus": str(defocus),
            }
        )
    return rows, fractions


# --------------------------------------------------------------------------------------
# depth sources for SYNDOF: Sintel, Middlebury 2014, SYNTHIA (DATASETS.md sections 6-8)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# ILSVRC (DATASETS.md section 9)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------


def _read_release(root: Path, out_dir: Path, polarity: str, **options):
    """The DMENet authors' data and plain photo folders (:mod:`defocus.datasets.dmenet_release`,
    imported here because it builds on this module's helpers)."""
    from defocus.datasets import dmenet_release

    part = options.pop("part")
    if part == "photos":
        return dmenet_release.read_photo_folder(root), []
    return dmenet_release.read_release_part(root, out_dir, polarity, part=part, **options)


READERS: dict[str, Callable] = {
    "cuhk": _read_cuhk,
    "dut": _read_dut,
    "rtf": _read_rtf,
    "sintel": _read_sintel,
    "middlebury2014": _read_middlebury,
    "synthia": _read_synthia,
    "ilsvrc": _read_ilsvrc,
    "photos": partial(_read_release, part="photos"),
    "dmenet_release": partial(_read_release, part="all"),
    "dmenet_release_syndof": partial(_read_release, part="syndof"),
    "dmenet_release_cuhk": partial(_read_release, part="cuhk"),
    "dmenet_release_flickr": partial(_read_release, part="flickr"),
    "dmenet_release_rtf": partial(_read_release, part="rtf", noise_level="0"),
    "dmenet_release_rtf1": partial(_read_release, part="rtf", noise_level="1"),
    "dmenet_release_rtf1_6": partial(_read_release, part="rtf", noise_level="1.6"),
}


def build_manifest(
    name: str,
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    polarity_override: str | Mapping | None = None,
    **options,
) -> Path:
    """Normalise dataset ``name`` found under ``root`` into ``out_dir/manifest.csv``.

    Parameters
    ----------
    name : str
        Registry name: ``cuhk``, ``dut``, ``rtf``, ``sintel``, ``middlebury2014``,
        ``synthia`` or ``ilsvrc``.
    root : path-like
        The unpacked dataset (a download root or the user's ``datasets.<name>.root``); the
        readers search it recursively, so an extra top folder is fine.
    out_dir : path-like
        Where ``manifest.csv`` and derived files (``gt/``, ``depth/``, ``defocus/``) go.
    polarity_override : {"white_blurred", "white_sharp"} or mapping, optional
        Replaces the registry's declared GT polarity (binary datasets only). The config entry
        ``datasets.<name>`` (a mapping) is accepted too: its ``polarity`` is used, and its
        ``scenes`` and ``n_images`` become the reader options ``scenes`` and ``n``, and its
        ``conversion``, ``image_root`` and ``noise_level`` the RTF options (explicit
        ``options`` win).
    **options
        Reader options:

        * ``rtf``: ``noise_level`` (sub-folder of ``gt/``, default ``"0"``), ``conversion``
          (DMENet's ``convertion.mat`` or an Nx2 array [sigma, RTF value]; without it the raw
          blurMap is stored and a warning logged), ``threshold`` (default 0.5: the binary GT
          is ``sigma > threshold``; our choice for binary metrics, not from the papers),
          ``image_root`` (folder of the input images, default ``root``);
        * ``sintel``: ``render_pass`` (``"clean"``, or ``"final"``);
        * ``sintel``, ``middlebury2014``, ``synthia``: ``scenes``, a subset of scene /
          sequence names (Middlebury ``Adirondack`` or ``Adirondack-perfect``);
        * ``synthia``: ``camera`` (default ``"Stereo_Right/Omni_F"`` as SYNDOF; None = all);
        * ``ilsvrc``: ``n`` (default 300, Park et al. CVPR'17) and ``seed`` (default 0).

    Returns
    -------
    Path
        ``out_dir/manifest.csv``.

    Raises
    ------
    DatasetLayoutError
        Missing folders/files, a GT missing for an image, or image/GT sizes that differ
        (the message names both files and sizes).

    Warns
    -----
    PolarityWarning
        A mask is all one class, or the dataset's mean blurred fraction is < 0.5.
    """
    spec = get_spec(name)
    if isinstance(polarity_override, Mapping):
        entry = polarity_override
        polarity_override = entry.get("polarity")
        if entry.get("scenes"):
            options.setdefault("scenes", list(entry["scenes"]))
        if entry.get("n_images"):
            options.setdefault("n", int(entry["n_images"]))
        for key in ("conversion", "image_root", "noise_level"):  # RTF (config schema)
            if entry.get(key) is not None:
                options.setdefault(key, str(entry[key]))
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset {name}: root {root} is not a folder")
    polarity = polarity_override or spec.gt_polarity or "white_blurred"
    if polarity not in POLARITIES:
        raise ValueError(f"polarity_override must be one of {POLARITIES}, got {polarity!r}")
    if polarity_override and spec.kind != "binary":
        log.warning("dataset %s has no binary GT in its source; polarity_override ignored", name)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, fractions = READERS[name](root, out_dir, polarity, **options)
    if spec.kind == "binary":
        check_dataset_polarity(fractions, name, polarity)
    path = out_dir / "manifest.csv"
    write_manifest(rows, path)
    log.info("dataset %s: %d rows -> %s", name, len(rows), path)
    return path
