"""The DMENet authors' training and test data (``datasets.zip``, github codeslake/DMENet README,
step 3) read into manifests, one per part, as the release's ``main.py`` reads them.

Layout (release ``config.py`` lines 35-57; README's tree)::

    train/SYNDOF/image/       synthetic defocused images
    train/SYNDOF/blur_map/    their defocus maps (PNG; CoC = channel 1 / 10, utils.py line 38)
    train/CUHK/image/, gt/    the 504 CUHK training images and binary masks (white = blurred)
    train/Flickr/             unlabelled real defocused photos (domain adaptation, no GT)
    test/CUHK/image/, gt/     the 200 CUHK test images and masks
    test/SYNDOF/image/, gt/   synthetic test images; GT a grey PNG / 255 = CoC / 15
    test/RTF/image/{0,1,1.6}/, gt/{0,1,1.6}/   RTF at three noise levels; GT .npy = sigma (px)

Label decoding (release ``utils.get_images``, ``main.py`` ``evaluate``):

* ``blur_map`` (mode 'DEPTH'): ``CoC = imread(..., IMREAD_UNCHANGED)[:, :, 1] / 10`` (utils.py
  line 38; the comment at lines 39-42: "maximum COC value is 15 and we saved the defocus map
  with the COC value"); the network's target is ``CoC / 15`` (line 43);
* test/SYNDOF ``gt`` (mode 'GRAY'): ``gt / 255`` is compared with the network's output
  (main.py lines 515-517), so ``CoC = 15 * gt / 255``;
* test/RTF ``gt`` (mode 'NPY'): sigma in px, divided by 3.275 for scoring (utils.py line 35);
* CoC -> Gaussian sigma in px: ``sigma = max(0, (CoC - 1) / 2)`` (main.py lines 500-501).

Every part pairs images with labels as the release does: both folders' file lists sorted and
matched by position (``main.py`` lines 79-87, 337-338, 445-451); counts and sizes are checked.

Manifests: ``defocus`` holds sigma in px (the manifest contract), ``coc`` the CoC in px (the
release's training label, read by DMENet with ``target="coc"``), ``gt`` a 255 = blurred mask
(for SYNDOF and RTF: sigma > ``threshold``, our choice for binary metrics, as the ``rtf``
reader). Ids are file stems, prefixed by the split in parts with both (``train_0001``).
Parts (registry names): ``dmenet_release`` (every part in one listing, ids prefixed
by part), ``dmenet_release_syndof`` (train + test), ``dmenet_release_cuhk`` (the release's
504 / 200 split), ``dmenet_release_flickr`` (train, no GT: DMENet's ``real`` role) and
``dmenet_release_rtf`` / ``_rtf1`` / ``_rtf1_6`` (test, noise 0 / 1 / 1.6; release test sets
RTF0, RTF1, RTF1_6).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from defocus.datasets.readers import (
    IMAGE_EXTS,
    DatasetLayoutError,
    _check_same_size,
    _files,
    _save_npy,
    check_polarity,
    to_blurred_mask,
)
from defocus.io.image import read_gray, read_image, write_image
from defocus.releases import get_release

log = logging.getLogger(__name__)

#: release config.TRAIN.max_coc (config.py line 77): blur_map CoC / 15 is the target
MAX_COC = 15.0
#: PNG value per CoC pixel in train/SYNDOF/blur_map (utils.py line 38: ``/ 10.``)
BLUR_MAP_SCALE = 10.0
#: test/RTF noise levels (folders; release test sets RTF0, RTF1, RTF1_6)
RTF_NOISE = ("0", "1", "1.6")
PARTS = ("all", "syndof", "cuhk", "flickr", "rtf")


def coc_to_sigma(coc: np.ndarray) -> np.ndarray:
    """Gaussian sigma (px) of a CoC map (px) as the release decodes it (main.py lines
    500-501: ``(CoC - 1) / 2``, negative values set to 0)."""
    return np.maximum((np.asarray(coc, np.float32) - 1.0) / 2.0, 0.0).astype(np.float32)


def read_blur_map(path: str | Path) -> np.ndarray:
    """CoC (px, float32) of a train/SYNDOF/blur_map file: channel 1 / 10 (utils.py line 38).

    OpenCV reads the file unchanged (8 or 16 bit); a one-channel file is its own channel.
    """
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetLayoutError(f"dmenet_release: cannot read blur map {path}")
    chan = raw[:, :, 1] if raw.ndim == 3 else raw
    return (chan.astype(np.float32) / np.float32(BLUR_MAP_SCALE)).astype(np.float32)


def _folder(root: Path, rel: str, required: bool = True) -> Path | None:
    """``root/rel``, or the same under one extra top folder (``datasets/``)."""
    for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (base / rel).is_dir():
            return base / rel
    if required:
        raise DatasetLayoutError(
            f"dmenet_release: no folder {rel}/ under {root} (the release's datasets.zip "
            "unpacks to train/{SYNDOF,CUHK,Flickr} and test/{CUHK,RTF,SYNDOF})"
        )
    return None


def _pairs(images: Path, labels: Path, exts: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """Sorted images and labels matched by position, as the release's sorted file lists."""
    ims = [p for p in _files(images, IMAGE_EXTS) if p.parent == images]
    labs = [p for p in _files(labels, exts) if p.parent == labels]
    if len(ims) != len(labs):
        raise DatasetLayoutError(
            f"dmenet_release: {len(ims)} images in {images} but {len(labs)} labels in {labels} "
            "(the release pairs the sorted lists by position)"
        )
    if not ims:
        raise DatasetLayoutError(f"dmenet_release: no images in {images}")
    return list(zip(ims, labs, strict=True))


def _continuous_row(
    id_: str,
    split: str,
    img: Path,
    coc: np.ndarray | None,
    sigma: np.ndarray,
    label_path: Path,
    out_dir: Path,
    threshold: float,
) -> dict:
    shape = read_image(img).shape
    _check_same_size(img, shape, label_path, sigma.shape)
    row = {"id": id_, "split": split, "image": str(img.resolve())}
    defocus = out_dir / "defocus" / f"{id_}.npy"
    _save_npy(defocus, sigma)
    row["defocus"] = str(defocus)
    if coc is not None:
        path = out_dir / "coc" / f"{id_}.npy"
        _save_npy(path, coc)
        row["coc"] = str(path)
    gt = out_dir / "gt" / f"{id_}.png"
    write_image(gt, np.where(sigma > threshold, 255, 0).astype(np.uint8))
    row["gt"] = str(gt)
    return row


def read_syndof_gt(path: str | Path) -> np.ndarray:
    """CoC (px, float32) of a test/SYNDOF/gt file: ``15 * gt / 255`` (main.py lines 515-517),
    the grey level scaled by its type's maximum."""
    g = read_gray(path)
    top = float(np.iinfo(g.dtype).max) if np.issubdtype(g.dtype, np.integer) else 1.0
    return (g.astype(np.float32) / np.float32(top) * np.float32(MAX_COC)).astype(np.float32)


def _syndof(root: Path, out_dir: Path, threshold: float, prefix: str = "") -> list[dict]:
    def rows_of(split: str, pairs: list[tuple[Path, Path]], read_coc) -> list[dict]:
        rows = []
        for img, lab in pairs:
            coc = read_coc(lab)
            rows.append(
                _continuous_row(
                    f"{prefix}{split}_{img.stem}",
                    split,
                    img,
                    coc,
                    coc_to_sigma(coc),
                    lab,
                    out_dir,
                    threshold,
                )  # fmt: skip
            )
        return rows

    train = _pairs(
        _folder(root, "train/SYNDOF/image"), _folder(root, "train/SYNDOF/blur_map"), IMAGE_EXTS
    )
    rows = rows_of("train", train, read_blur_map)
    test_img = _folder(root, "test/SYNDOF/image", required=False)
    if test_img is not None:
        test = _pairs(test_img, _folder(root, "test/SYNDOF/gt"), IMAGE_EXTS)
        rows += rows_of("test", test, read_syndof_gt)
    return rows


def _cuhk(root: Path, out_dir: Path, polarity: str, prefix: str = "") -> tuple[list, list]:
    rows, fractions = [], []
    for split in ("train", "test"):
        pairs = _pairs(
            _folder(root, f"{split}/CUHK/image"), _folder(root, f"{split}/CUHK/gt"), IMAGE_EXTS
        )
        for img, lab in pairs:
            id_ = f"{prefix}{split}_{img.stem}"
            im, g = read_image(img), read_gray(lab)
            _check_same_size(img, im.shape, lab, g.shape)
            mask = to_blurred_mask(g, polarity)
            fractions.append(check_polarity(mask, str(lab)))
            gt = out_dir / "gt" / f"{id_}.png"
            write_image(gt, mask)
            rows.append({"id": id_, "split": split, "image": str(img.resolve()), "gt": str(gt)})
    return rows, fractions


def read_photo_folder(root: Path, split: str = "train", prefix: str = "") -> list[dict]:
    """Every image under ``root`` (recursive, sorted) as a row without GT: unlabelled real
    photos (DMENet's ``real`` role; the release's ``train/Flickr``). Ids are file stems, or
    the relative path joined by ``_`` where stems repeat."""
    files = _files(root, IMAGE_EXTS)
    if not files:
        raise DatasetLayoutError(f"no images ({', '.join(IMAGE_EXTS)}) under {root}")
    stems = [p.stem for p in files]
    rows = []
    for p in files:
        id_ = (
            p.stem
            if stems.count(p.stem) == 1
            else "_".join(p.relative_to(root).with_suffix("").parts)
        )
        rows.append({"id": f"{prefix}{id_}", "split": split, "image": str(p.resolve()), "gt": ""})
    return rows


def _rtf(root: Path, out_dir: Path, noise: str, threshold: float, prefix: str = "") -> list[dict]:
    if noise not in RTF_NOISE:
        raise ValueError(f"RTF noise level must be one of {RTF_NOISE}, got {noise!r}")
    pairs = _pairs(
        _folder(root, f"test/RTF/image/{noise}"), _folder(root, f"test/RTF/gt/{noise}"), (".npy",)
    )
    rows = []
    for img, lab in pairs:
        sigma = np.asarray(np.load(lab), np.float32)
        if sigma.ndim != 2:
            raise DatasetLayoutError(f"dmenet_release: {lab} is not a 2-d sigma map")
        rows.append(
            _continuous_row(
                f"{prefix}{img.stem}", "test", img, None, sigma, lab, out_dir, threshold
            )
        )
    return rows


def read_release_part(
    root: str | Path,
    out_dir: str | Path,
    polarity: str = "white_blurred",
    part: str = "all",
    noise_level: str = "0",
    threshold: float = 0.5,
    **_,
) -> tuple[list[dict], list[float]]:
    """Rows and binary-mask blurred fractions of one part of the release (see module doc).

    ``threshold`` (px of sigma): binary GT of the continuous parts (SYNDOF, RTF).
    ``polarity``: of the CUHK masks (release: white = blurred, the target of ``Binary_Net``).
    """
    root, out_dir = Path(root), Path(out_dir)
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if part == "syndof":
        return _syndof(root, out_dir, threshold), []
    if part == "cuhk":
        return _cuhk(root, out_dir, polarity)
    if part == "flickr":
        return read_photo_folder(_folder(root, "train/Flickr")), []
    if part == "rtf":
        return _rtf(root, out_dir, str(noise_level), threshold), []
    rows = _syndof(root, out_dir, threshold, "syndof_")
    cuhk, fractions = _cuhk(root, out_dir, polarity, "cuhk_")
    rows += cuhk + read_photo_folder(_folder(root, "train/Flickr"), prefix="flickr_")
    for noise in RTF_NOISE:
        if _folder(root, f"test/RTF/image/{noise}", required=False) is not None:
            tag = noise.replace(".", "_")
            rows += _rtf(root, out_dir, noise, threshold, f"rtf{tag}_")
    return rows, fractions


#: DMENet's RTF conversion table (evaluation/RTF/convertion.mat: column 1 Gaussian sigma,
#: column 2 RTF blurMap value, 23 rows, sigma 0.3 .. 3.275): the ``rtf_conversion`` entry of
#: :mod:`defocus.releases` (its URL, file name and pinned sha256)
RTF_CONVERSION_URL = get_release("rtf_conversion").urls[0]
RTF_CONVERSION_SHA256 = get_release("rtf_conversion").sha256
RTF_CONVERSION_FNAME = get_release("rtf_conversion").fname


def fetch_rtf_conversion(
    dest: str | Path, entry: dict | None = None, progress: bool = True
) -> Path:
    """Download DMENet's RTF conversion table (verified sha256) to ``dest`` atomically
    (:func:`defocus.releases.fetch` of the ``rtf_conversion`` entry).

    ``entry``: config ``releases.rtf_conversion`` (``base_url``: a mirror serving
    ``convertion.mat``; ``sha256: {convertion.mat: ...}``: its pin), as the other releases.
    """
    from defocus.releases import fetch

    return fetch("rtf_conversion", dest, entry, progress)
