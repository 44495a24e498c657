"""Builders of the miniature real inputs (see the package docstring).

Formats are written here by hand (``struct``/``zipfile``/OpenCV), not with the package's own
writers, so that a reader bug is not mirrored by the same bug in a writer. Every random choice
comes from one seeded generator.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np

from defocus.datasets.registry import get_spec

#: a fixed timestamp for every zip member, so archives depend on their content only
_ZIP_TIME = (2015, 3, 5, 12, 0, 0)

#: scikit-image photographs used as scene textures (all RGB or grey, shipped in its wheel)
_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "immunohistochemistry")

#: CUHK ids of the miniature: BTBNet test ids (0026 and 0103 have the real set's upper-case
#: .JPG), training ids, and motion images that the defocus reader must skip
CUHK_IDS = {
    "out_of_focus0037": ".jpg",
    "out_of_focus0026": ".JPG",
    "out_of_focus0103": ".JPG",
    "out_of_focus0001": ".jpg",
    "out_of_focus0002": ".jpg",
    "out_of_focus0099": ".JPG",  # a BTBNet test id too
    "motion0001": ".jpg",
    "motion0002": ".jpg",
}
#: CUHK masks stored as RGBA (equal colour channels, opaque alpha), as a few real ones are
CUHK_RGBA = ("out_of_focus0001", "out_of_focus0037")
SINTEL_SCENES = ("alley_1", "market_2")
SYNTHIA_SEQ = "SYNTHIA-SEQS-01-NIGHT"
RTF_NOISE = ("0", "1", "1.6")
RTF_NAMES = ("im01", "im02")
ILSVRC_N = 6


@dataclass
class Miniatures:
    """Where the miniatures are.

    Attributes
    ----------
    serve_root : Path
        Folder to serve over HTTP: file ``serve_root/<url path>`` answers the registry URL
        ``<scheme>://<host>/<url path>``.
    url_dirs : dict
        Dataset or release (config ``datasets.<name>`` / ``releases.<name>``) -> the URL
        folder of its files (no host, no slash at the ends): ``base_url =
        http://<host>/<url_dir>``.
    sha256 : dict
        Dataset or release -> {file name: sha256} of the served files.
    roots : dict
        Dataset -> folder of the datasets that have no unattended download (DUT, SYNTHIA,
        ILSVRC), relative to ``data_dir``'s parent (the Snakemake working directory).
    torch_home : Path
        A ``TORCH_HOME`` whose hub cache holds VGG16 / VGG19 under torchvision's file names.
    rtf_conversion : Path
        DMENet's ``convertion.mat`` look-up table (it ships in the DMENet repository, not in
        the RTF archives).
    counts : dict
        Dataset -> rows its manifest must have, by split.
    """

    serve_root: Path
    data_dir: Path
    torch_home: Path
    rtf_conversion: Path
    url_dirs: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, dict[str, str]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


# -- images -------------------------------------------------------------------------------
def _photo(k: int, w: int, h: int) -> np.ndarray:
    """Photograph number ``k`` (cycled) as RGB uint8 ``(h, w, 3)``."""
    from skimage import data

    img = getattr(data, _PHOTOS[k % len(_PHOTOS)])()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return cv2.resize(img[..., :3], (w, h), interpolation=cv2.INTER_AREA)


def _defocused(k: int, w: int, h: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A photo whose background is blurred around a sharp box; the mask is True = blurred.

    The sharp box covers 20-40 % of the image: backgrounds are the large blurred area, as in
    CUHK and DUT.
    """
    img = _photo(k, w, h)
    bw, bh = int(w * rng.uniform(0.45, 0.6)), int(h * rng.uniform(0.45, 0.6))
    x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
    blurred = np.ones((h, w), bool)
    blurred[y0 : y0 + bh, x0 : x0 + bw] = False
    soft = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(2.0, 3.5)))
    return np.where(blurred[..., None], soft, img), blurred


def _jpg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]))
    assert ok
    return buf.tobytes()


def _png(img: np.ndarray) -> bytes:
    """PNG of a grey, RGB or RGBA array (uint8 or uint16); colour given as RGB(A)."""
    if img.ndim == 3:
        order = [2, 1, 0, 3][: img.shape[2]]
        img = img[..., order]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    assert ok
    return buf.tobytes()


def _bmp(gray: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".bmp", np.ascontiguousarray(gray))
    assert ok
    return buf.tobytes()


def _depth_scene(w: int, h: int, rng: np.random.Generator, near: float, far: float):
    """Depth in metres: a slanted background plane and a nearer box (a foreground object)."""
    ramp = np.linspace(far, 0.6 * far + 0.4 * near, h, dtype=np.float64)[:, None]
    depth = np.repeat(ramp, w, axis=1)
    bw, bh = w // 3, h // 2
    x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
    depth[y0 : y0 + bh, x0 : x0 + bw] = near
    return depth


# -- file formats -------------------------------------------------------------------------
def dpt_bytes(depth: np.ndarray) -> bytes:
    """Sintel .dpt: float32 tag 202021.25, int32 width, int32 height, row-major float32
    (little-endian; DATASETS.md section 6)."""
    h, w = depth.shape
    return struct.pack("<fii", 202021.25, w, h) + depth.astype("<f4").tobytes()


def cam_bytes(f: float, w: int, h: int) -> bytes:
    """Sintel .cam: the same tag, then the 3x3 intrinsics and 3x4 extrinsics as float64."""
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], "<f8")
    n = np.hstack([np.eye(3), np.zeros((3, 1))]).astype("<f8")
    return struct.pack("<f", 202021.25) + k.tobytes() + n.tobytes()


def pfm_bytes(data: np.ndarray) -> bytes:
    """One-channel PFM ('Pf'), little-endian (negative scale), rows bottom to top."""
    h, w = data.shape
    return f"Pf\n{w} {h}\n-1.0\n".encode() + np.flipud(data).astype("<f4").tobytes()


def mat_bytes(path: Path, **arrays) -> None:
    """A MATLAB 5 .mat file (scipy writes the format MATLAB's save writes by default)."""
    from scipy.io import savemat

    savemat(path, arrays)


def _zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in sorted(members.items()):
            zf.writestr(zipfile.ZipInfo(name, _ZIP_TIME), payload)


def _write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _url_dir(url: str) -> str:
    return urlparse(url).path.strip("/").rpartition("/")[0]


# -- datasets -----------------------------------------------------------------------------
def _serve(m: Miniatures, name: str, members: dict[str, dict[str, bytes]]) -> None:
    """Pack ``{fname: {member: bytes}}`` as the registry's files of ``name`` and serve them at
    the URL folder of its first file (the registry's own path where all files share one)."""
    spec = get_spec(name)
    assert {f.fname for f in spec.files} == set(members), name
    url_dir = _url_dir(spec.files[0].url)
    m.url_dirs[name] = url_dir
    m.sha256[name] = {}
    for f in spec.files:
        path = m.serve_root / url_dir / f.fname
        _zip(path, members[f.fname])
        m.sha256[name][f.fname] = _sha(path)


def build_cuhk(m: Miniatures, rng: np.random.Generator) -> None:
    """BlurDatasetImage.zip -> image/<id>.jpg|.JPG, BlurDatasetGT.zip -> gt/<id>.png (white =
    blurred, 8-bit grey or RGBA)."""
    images, gts = {}, {}
    for k, (id_, ext) in enumerate(CUHK_IDS.items()):
        img, blurred = _defocused(k, 96, 64, rng)
        images[f"image/{id_}{ext}"] = _jpg(img)
        mask = np.where(blurred, 255, 0).astype(np.uint8)
        if id_ in CUHK_RGBA:
            mask = np.dstack([mask, mask, mask, np.full_like(mask, 255)])
        gts[f"gt/{id_}.png"] = _png(mask)
    _serve(m, "cuhk", {"BlurDatasetImage.zip": images, "BlurDatasetGT.zip": gts})
    from defocus.datasets.readers import cuhk_btbnet_test_ids

    test = {i.lower() for i in cuhk_btbnet_test_ids()}
    ids = [i for i in CUHK_IDS if i.startswith("out_of_focus")]
    n_test = sum(i in test for i in ids)
    m.counts["cuhk"] = {"test": n_test, "train": len(ids) - n_test}


def build_dut(m: Miniatures, rng: np.random.Generator) -> None:
    """DUT-DBD_Dataset/{DUT600S_Training, DUT600GT_Training, DUT500S-Testing, DUT500GT-Testing}
    with <n>.jpg images and <n>.bmp masks, white = in focus (a local copy: no download)."""
    top = m.data_dir / "DUT-DBD_Dataset"
    plan = {
        ("DUT600S_Training", "DUT600GT_Training"): 2,
        ("DUT500S-Testing", "DUT500GT-Testing"): 3,
    }
    for (img_dir, gt_dir), n in plan.items():
        for i in range(1, n + 1):
            img, blurred = _defocused(10 + i + n, 80, 64, rng)
            _write(top / img_dir / f"{i}.jpg", _jpg(img))
            _write(top / gt_dir / f"{i}.bmp", _bmp(np.where(blurred, 0, 255).astype(np.uint8)))
    m.roots["dut"] = f"{m.data_dir.name}/DUT-DBD_Dataset"
    m.counts["dut"] = {"test": 3, "train": 2}


def build_rtf(m: Miniatures, rng: np.random.Generator) -> None:
    """RTF_our_results_gt.zip -> RTF/gt/<noise>/<name>.mat (blurMap) and RTF/out/BDCS/...;
    Defocus_Blur_Dataset.zip -> Defocus_Blur_Dataset/<noise>/<name>.png; and DMENet's
    convertion.mat (column 1 = Gaussian sigma, column 2 = RTF value)."""
    import io

    from scipy.io import savemat

    gt, imgs = {}, {}
    for j, name in enumerate(RTF_NAMES):
        base = _photo(j, 64, 48)
        depth = _depth_scene(64, 48, rng, 0.0, 3.0)
        for noise in RTF_NOISE:
            buf = io.BytesIO()
            savemat(buf, {"blurMap": (0.5 + depth).astype(np.float64)})
            gt[f"RTF/gt/{noise}/{name}.mat"] = buf.getvalue()
            gt[f"RTF/out/BDCS/{noise}/{name}.png"] = _png(np.zeros((48, 64), np.uint8))
            noisy = np.clip(base + rng.normal(0, float(noise) * 4, base.shape), 0, 255)
            imgs[f"Defocus_Blur_Dataset/{noise}/{name}.png"] = _png(noisy.astype(np.uint8))
    _serve(m, "rtf", {"RTF_our_results_gt.zip": gt, "Defocus_Blur_Dataset.zip": imgs})
    sigma = np.linspace(0.0, 4.0, 41)
    savemat(m.rtf_conversion, {"convertion": np.stack([sigma, 0.5 + 0.8 * sigma], axis=1)})
    m.counts["rtf"] = {"test": len(RTF_NAMES)}
    # the same table served at DMENet's repository path (rule fetch_rtf_conversion)
    from defocus.releases import get_release

    table = get_release("rtf_conversion")
    url_dir = _url_dir(table.urls[0])
    served = m.serve_root / url_dir / table.fname
    _write(served, m.rtf_conversion.read_bytes())
    m.url_dirs["rtf_conversion"] = url_dir
    m.sha256["rtf_conversion"] = {table.fname: _sha(served)}


def build_sintel(m: Miniatures, rng: np.random.Generator) -> None:
    """MPI-Sintel-depth-training-20150305.zip -> training/depth/<scene>/frame_NNNN.dpt (+
    camdata_left .cam); MPI-Sintel-training_images.zip -> training/{clean,final}/<scene>/."""
    depth_zip, image_zip = {}, {}
    w, h = 96, 41  # Sintel frames are 1024x436
    for k, scene in enumerate(SINTEL_SCENES):
        depth = _depth_scene(w, h, rng, 2.0, 30.0)
        depth[0, :] = 1.0e10  # sky: huge finite values, as the real files have
        frame = "frame_0001"
        depth_zip[f"training/depth/{scene}/{frame}.dpt"] = dpt_bytes(depth)
        depth_zip[f"training/camdata_left/{scene}/{frame}.cam"] = cam_bytes(100.0, w, h)
        img = _photo(k + 2, w, h)
        image_zip[f"training/clean/{scene}/{frame}.png"] = _png(img)
        image_zip[f"training/final/{scene}/{frame}.png"] = _png(cv2.GaussianBlur(img, (3, 3), 0))
    _serve(
        m,
        "sintel",
        {
            "MPI-Sintel-depth-training-20150305.zip": depth_zip,
            "MPI-Sintel-training_images.zip": image_zip,
        },
    )
    m.counts["sintel"] = {"train": len(SINTEL_SCENES)}


def build_synthia(m: Miniatures, rng: np.random.Generator) -> None:
    """SYNTHIA-SEQS-01-NIGHT/{RGB,Depth,GT/COLOR,GT/LABELS}/Stereo_{Left,Right}/Omni_{F,B}/
    000000.png, depth a 16-bit PNG with three equal channels in cm, 65535 = far."""
    seq = m.data_dir / SYNTHIA_SEQ
    w, h = 96, 57  # SYNTHIA frames are 1280x760
    for cam in ("Stereo_Left/Omni_F", "Stereo_Right/Omni_F", "Stereo_Right/Omni_B"):
        for i in range(2):
            frame = f"{i:06d}.png"
            depth_cm = np.round(_depth_scene(w, h, rng, 3.0, 60.0) * 100)
            depth_cm[:3, :] = 65535  # sky
            d16 = np.clip(depth_cm, 0, 65535).astype(np.uint16)
            _write(seq / "Depth" / cam / frame, _png(np.dstack([d16, d16, d16])))
            _write(seq / "RGB" / cam / frame, _png(_photo(i + 4, w, h)))
            labels = np.zeros((h, w, 3), np.uint16)
            _write(seq / "GT" / "LABELS" / cam / frame, _png(labels))
            _write(seq / "GT" / "COLOR" / cam / frame, _png(np.zeros((h, w, 3), np.uint8)))
    _write(seq / "CameraParams" / "intrinsics.txt", b"532.740352\n640\n380\n")
    m.roots["synthia"] = m.data_dir.name
    m.counts["synthia"] = {"train": 2}  # camera Stereo_Right/Omni_F only (SYNDOF)


def build_middlebury(m: Miniatures, rng: np.random.Generator) -> None:
    """<Scene>-perfect.zip -> <Scene>-perfect/{im0,im1}.png, disp{0,1}.pfm (inf = invalid) and
    calib.txt, for all 23 scenes of the registry."""
    # the real scenes are ~2880x1988 (SYNDOF renders them at quarter size): f and the
    # disparities are scaled alike
    w, h = 192, 132
    f, baseline, doffs = 277.0, 176.252, 1.3
    members = {}
    for k, scene in enumerate(
        s.fname.removesuffix(".zip") for s in get_spec("middlebury2014").files
    ):
        depth_mm = _depth_scene(w, h, rng, 900.0, 3000.0)
        disp = (baseline * f / depth_mm - doffs).astype(np.float32)
        disp[rng.random((h, w)) < 0.03] = np.inf  # holes
        calib = (
            f"cam0=[{f} 0 {w / 2}; 0 {f} {h / 2}; 0 0 1]\n"
            f"cam1=[{f} 0 {w / 2 + doffs}; 0 {f} {h / 2}; 0 0 1]\n"
            f"doffs={doffs}\nbaseline={baseline}\nwidth={w}\nheight={h}\nndisp=64\nisint=0\n"
            "vmin=14\nvmax=56\ndyavg=0\ndymax=0\n"
        )
        img = _photo(k, w, h)
        members[f"{scene}.zip"] = {
            f"{scene}/im0.png": _png(img),
            f"{scene}/im1.png": _png(np.roll(img, -3, axis=1)),
            f"{scene}/disp0.pfm": pfm_bytes(disp),
            f"{scene}/disp1.pfm": pfm_bytes(disp),
            f"{scene}/calib.txt": calib.encode(),
        }
    _serve(m, "middlebury2014", members)


def build_ilsvrc(m: Miniatures, rng: np.random.Generator) -> None:
    """An extracted ILSVRC2012_img_val.tar: ILSVRC2012_val_NNNNNNNN.JPEG (a local copy)."""
    top = m.data_dir / "ILSVRC2012_img_val"
    for i in range(1, ILSVRC_N + 1):
        _write(top / f"ILSVRC2012_val_{i:08d}.JPEG", _jpg(_photo(i, 80, 60)))
    m.roots["ilsvrc"] = f"{m.data_dir.name}/ILSVRC2012_img_val"


def build_dmenet_release(m: Miniatures, rng: np.random.Generator) -> None:
    """datasets.zip of the DMENet release -> datasets/{train,test}/...: SYNDOF (blur_map: CoC x
    10 in channel 1 of a 16-bit PNG; test gt: grey CoC / 15 x 255), CUHK image/ + gt/ (white =
    blurred), Flickr photos, RTF image/<noise>/ and gt/<noise>/*.npy (sigma in px)."""
    members: dict[str, bytes] = {}
    w, h = 80, 56
    top = "datasets"
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            depth = _depth_scene(w, h, rng, 1.0, 15.0)  # a CoC map in px, 1..15
            members[f"{top}/{split}/SYNDOF/image/{i:04d}.png"] = _png(_photo(i + 1, w, h))
            if split == "train":
                bm = np.round(depth * 10).astype(np.uint16)
                members[f"{top}/train/SYNDOF/blur_map/{i:04d}.png"] = _png(np.dstack([bm] * 3))
            else:
                gt = np.round(depth / 15 * 255).astype(np.uint8)
                members[f"{top}/test/SYNDOF/gt/{i:04d}.png"] = _png(gt)
            img, blurred = _defocused(i + 3, w, h, rng)
            members[f"{top}/{split}/CUHK/image/out_of_focus{i + 1:04d}.jpg"] = _jpg(img)
            mask = np.where(blurred, 255, 0).astype(np.uint8)
            members[f"{top}/{split}/CUHK/gt/out_of_focus{i + 1:04d}.png"] = _png(mask)
    for i in range(2):
        img, _ = _defocused(i + 5, w, h, rng)
        members[f"{top}/train/Flickr/{i:04d}.jpg"] = _jpg(img)
    for noise in RTF_NOISE:
        for i in range(2):
            members[f"{top}/test/RTF/image/{noise}/{i:02d}.png"] = _png(_photo(i, w, h))
            buf = __import__("io").BytesIO()
            np.save(buf, _depth_scene(w, h, rng, 0.0, 3.0))
            members[f"{top}/test/RTF/gt/{noise}/{i:02d}.npy"] = buf.getvalue()
    _serve(m, "dmenet_release", {"datasets.zip": members})
    m.counts.update(
        {
            "dmenet_release": {"train": 8, "test": 10},  # every part in one listing
            "dmenet_release_syndof": {"train": 3, "test": 2},
            "dmenet_release_cuhk": {"train": 3, "test": 2},
            "dmenet_release_flickr": {"train": 2},
            **{f"dmenet_release_{p}": {"test": 2} for p in ("rtf", "rtf1", "rtf1_6")},
        }
    )


# -- released weights ---------------------------------------------------------------------
def build_dhde_weights(m: Miniatures, rng: np.random.Generator) -> None:
    """DHDE_model.caffemodel with the release's layer names and shapes (random weights),
    served at the release's URL path."""
    from test_caffemodel import _release_like
    from test_caffemodel import _write as write_caffemodel

    from defocus.releases import get_release

    release = get_release("dhde")
    url_dir = _url_dir(release.urls[0])
    path = m.serve_root / url_dir / release.fname
    path.parent.mkdir(parents=True, exist_ok=True)
    write_caffemodel(path, _release_like(rng))
    m.url_dirs["dhde"] = url_dir
    m.sha256["dhde"] = {release.fname: _sha(path)}


def _zip_stored(path: Path, members: dict[str, Path]) -> None:
    """A zip of large files (stored, not deflated: random weights do not compress)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, src in members.items():
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            with open(src, "rb") as f, zf.open(info, "w", force_zip64=True) as out:
                while block := f.read(1 << 22):
                    out.write(block)


def build_dmenet_weights(m: Miniatures, rng: np.random.Generator) -> None:
    """DMENet_BDCS.zip (checkpoint/DMENet_BDCS.npz: every variable of the release's model.py
    at full size, TensorLayer names) and vgg19.zip (vgg19/vgg19.npy: the Caffe VGG19 as a
    pickled {layer: [W, b]} dict), random values, served at the release's URL paths."""
    from test_dmenet_release import _vgg19_npy, model_py_variables

    from defocus.releases import get_release

    tmp = m.data_dir / "dmenet-weights"
    tmp.mkdir(parents=True, exist_ok=True)
    dmenet, vgg19 = get_release("dmenet"), get_release("vgg19")
    npz, npy = tmp / dmenet.member, tmp / vgg19.member
    np.savez(npz, **model_py_variables(1.0, seed=int(rng.integers(1 << 31))))
    _vgg19_npy(npy, 1.0, seed=int(rng.integers(1 << 31)))
    for key, urls, zip_name, member, src in (
        ("dmenet", dmenet.urls, dmenet.fname, "DMENet_BDCS/checkpoint/", npz),
        ("vgg19", vgg19.urls, vgg19.fname, "vgg19/", npy),
    ):
        url_dir = _url_dir(urls[0])
        path = m.serve_root / url_dir / zip_name
        _zip_stored(path, {member + src.name: src})
        src.unlink()
        m.url_dirs[key] = url_dir
        m.sha256[key] = {zip_name: _sha(path)}


def build_vgg(m: Miniatures, seed: int) -> None:
    """Random VGG16 / VGG19 feature weights saved under torchvision's file names in
    ``TORCH_HOME/hub/checkpoints`` (keys ``features.N.weight`` as in torchvision's files)."""
    import torch
    from torchvision.models import VGG16_Weights, VGG19_Weights
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(seed)
    ckpt = m.torch_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    for cfg, w in (("D", VGG16_Weights.IMAGENET1K_V1), ("E", VGG19_Weights.IMAGENET1K_V1)):
        feats = make_layers(cfgs[cfg])
        state = {f"features.{k}": v for k, v in feats.state_dict().items()}
        torch.save(state, ckpt / Path(urlparse(w.url).path).name)


def build_all(workdir: str | Path, seed: int = 0, vgg: bool = True) -> Miniatures:
    """Every miniature under ``workdir``: ``serve/`` (HTTP), ``rehearsal-data/`` (local
    copies), ``torch-home/`` (VGG files). ``vgg=False`` skips the full-size backbone files
    (torchvision's VGG16 / VGG19, the DMENet checkpoint and Caffe VGG19: ~450 MB)."""
    workdir = Path(workdir)
    m = Miniatures(
        serve_root=workdir / "serve",
        data_dir=workdir / "rehearsal-data",
        torch_home=workdir / "torch-home",
        rtf_conversion=workdir / "rehearsal-data" / "convertion.mat",
    )
    m.data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for build in (
        build_cuhk,
        build_dut,
        build_rtf,
        build_sintel,
        build_synthia,
        build_middlebury,
        build_ilsvrc,
        build_dhde_weights,
        build_dmenet_release,
    ):
        build(m, rng)
    if vgg:
        build_vgg(m, seed)
        build_dmenet_weights(m, rng)
    return m
