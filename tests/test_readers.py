"""Readers on tiny fake layouts shaped like the real datasets (DATASETS.md sections 1-9)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from defocus.datasets.readers import (
    DatasetLayoutError,
    PolarityWarning,
    build_manifest,
    check_polarity,
    cuhk_btbnet_test_ids,
    rtf_to_sigma,
    to_blurred_mask,
)
from defocus.io.depth import write_dpt, write_pfm
from defocus.io.image import read_gray
from defocus.io.manifest import read_manifest

H, W = 8, 10


def _img(path, h=H, w=W, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))
    return path


def _mask(path, white_cols=slice(3, None), h=H, w=W):
    """A mask whose columns ``white_cols`` are white (7 of 10 by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((h, w), np.uint8)
    m[:, white_cols] = 255
    assert cv2.imwrite(str(path), m)
    return path


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected
        return fn(*a, **k)


# ---------------------------------------------------------------------------- helpers


def test_mask_conversion_and_checks():
    gt = np.array([[0, 255], [200, 10]], np.uint8)
    np.testing.assert_array_equal(to_blurred_mask(gt, "white_blurred"), [[0, 255], [255, 0]])
    np.testing.assert_array_equal(to_blurred_mask(gt, "white_sharp"), [[255, 0], [0, 255]])
    with pytest.raises(ValueError, match="polarity"):
        to_blurred_mask(gt, "black")
    with pytest.warns(PolarityWarning, match="entirely blurred"):
        assert check_polarity(np.full((2, 2), 255, np.uint8), "x") == 1.0


def test_shipped_cuhk_split():
    ids = cuhk_btbnet_test_ids()
    assert len(ids) == 100 == len(set(ids))
    assert ids[0] == "out_of_focus0037" and ids[-1] == "out_of_focus0103"  # D-DFFNet split.txt
    assert all(i.startswith("out_of_focus") for i in ids)


# ---------------------------------------------------------------------------- CUHK


def _cuhk(root):
    _img(root / "image" / "out_of_focus0001.jpg")
    _img(root / "image" / "out_of_focus0026.JPG")  # upper-case extension, in the test split
    _img(root / "image" / "motion0001.jpg")  # motion images are not used
    _mask(root / "gt" / "out_of_focus0001.png")
    _mask(root / "gt" / "out_of_focus0026.png")
    _mask(root / "gt" / "motion0001.png")
    return root


def test_cuhk(tmp_path):
    root = _cuhk(tmp_path / "CUHK")
    out = _quiet(build_manifest, "cuhk", root, tmp_path / "data")
    df = read_manifest(out)
    assert list(df["id"]) == ["out_of_focus0001", "out_of_focus0026"]
    assert list(df["split"]) == ["train", "test"]
    assert df["image"][1].endswith("out_of_focus0026.JPG")
    gt = read_gray(df["gt"][0])
    assert set(np.unique(gt)) == {0, 255} and gt[:, 5].min() == 255  # white = blurred kept
    assert (tmp_path / "data" / "gt" / "out_of_focus0001.png").is_file()


def test_cuhk_polarity_flip_warns(tmp_path):
    root = _cuhk(tmp_path / "CUHK")
    with pytest.warns(PolarityWarning, match="mean blurred fraction is 0.300"):
        out = build_manifest("cuhk", root, tmp_path / "data", polarity_override="white_sharp")
    gt = read_gray(read_manifest(out)["gt"][0])
    assert gt[:, 0].min() == 255 and gt[:, 5].max() == 0


def test_cuhk_missing_gt(tmp_path):
    root = _cuhk(tmp_path / "CUHK")
    (root / "gt" / "out_of_focus0026.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"no GT mask out_of_focus0026\.png.*\.JPG"):
        build_manifest("cuhk", root, tmp_path / "data")


def test_cuhk_size_mismatch(tmp_path):
    root = _cuhk(tmp_path / "CUHK")
    _mask(root / "gt" / "out_of_focus0001.png", h=H, w=W + 2)
    with pytest.raises(DatasetLayoutError) as exc:
        build_manifest("cuhk", root, tmp_path / "data")
    msg = str(exc.value)
    assert "out_of_focus0001.jpg is 10x8" in msg and "out_of_focus0001.png is 12x8" in msg


def test_cuhk_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no out_of_focus"):
        build_manifest("cuhk", tmp_path / "empty", tmp_path / "data")


# ---------------------------------------------------------------------------- DUT


def _dut(root, white_cols=slice(0, 3)):
    base = root / "DUT-DBD_Dataset"
    for stem in ("1", "2"):
        _img(base / "DUT600S_Training" / f"{stem}.jpg")
        _mask(base / "DUT600GT_Training" / f"{stem}.bmp", white_cols)
    _img(base / "DUT500S-Testing" / "1.jpg")
    _mask(base / "DUT500GT-Testing" / "1.bmp", white_cols)
    return root


def test_dut_white_sharp_default(tmp_path):
    # source: white = in focus on 3 of 10 columns -> 70 % blurred after conversion
    root = _dut(tmp_path / "dut")
    df = read_manifest(_quiet(build_manifest, "dut", root, tmp_path / "data"))
    assert sorted(zip(df["id"], df["split"], strict=True)) == [
        ("1", "test"),
        ("2", "train"),
        ("train_1", "train"),
    ]
    gt = read_gray(df["gt"][0])
    assert gt[:, 0].max() == 0 and gt[:, 5].min() == 255


def test_dut_lab_copy_folder_names(tmp_path):
    # the authors' lab copies name the test folders dut500-source / dut500-gt
    base = tmp_path / "dut" / "dataset"
    _img(base / "dut500-source" / "7.jpg")
    _mask(base / "dut500-gt" / "7.bmp", slice(0, 3))
    df = read_manifest(_quiet(build_manifest, "dut", tmp_path / "dut", tmp_path / "data"))
    assert list(zip(df["id"], df["split"], strict=True)) == [("7", "test")]
    assert read_gray(df["gt"][0])[:, 0].max() == 0  # white (sharp) columns became 0


def test_dut_polarity_check_warns(tmp_path):
    # the GT is really white = blurred (7 of 10 columns white): the default declaration
    # (white_sharp) makes most pixels sharp, and the dataset check says so
    root = _dut(tmp_path / "dut", white_cols=slice(3, None))
    with pytest.warns(PolarityWarning, match="polarity may be flipped"):
        build_manifest("dut", root, tmp_path / "data")
    _quiet(build_manifest, "dut", root, tmp_path / "d2", polarity_override="white_blurred")


def test_dut_missing_gt(tmp_path):
    root = _dut(tmp_path / "dut")
    (root / "DUT-DBD_Dataset" / "DUT500GT-Testing" / "1.bmp").unlink()
    with pytest.raises(DatasetLayoutError, match=r"no GT 1\.bmp"):
        build_manifest("dut", root, tmp_path / "data")


# ---------------------------------------------------------------------------- RTF


def test_rtf(tmp_path):
    root = tmp_path / "RTF"
    blur = np.zeros((H, W))
    blur[:, 5:] = 2.0  # RTF scale
    for noise in ("0", "1"):
        (root / "gt" / noise).mkdir(parents=True)
        savemat(root / "gt" / noise / "img01.mat", {"blurMap": blur})
    _img(root / "images" / "img01.png")
    _img(root / "out" / "BDCS" / "0" / "img01.png", value=7)  # results: must be ignored
    lut = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.2]])  # [sigma, RTF value]
    df = read_manifest(
        _quiet(build_manifest, "rtf", root, tmp_path / "data", conversion=lut, threshold=0.5)
    )
    assert list(df["id"]) == ["img01"] and list(df["split"]) == ["test"]
    assert "images" in df["image"][0]
    sigma = np.load(df["defocus"][0])
    np.testing.assert_array_equal(sigma[:, 5:], 2.0)  # nearest RTF value 2.2 -> sigma 2
    np.testing.assert_array_equal(sigma[:, :5], 0.0)
    gt = read_gray(df["gt"][0])
    assert gt[:, 5:].min() == 255 and gt[:, :5].max() == 0
    np.testing.assert_array_equal(rtf_to_sigma(np.array([0.4, 0.6, 1.7]), lut), [0, 1, 2])


def test_rtf_errors(tmp_path):
    root = tmp_path / "RTF"
    (root / "gt" / "0").mkdir(parents=True)
    savemat(root / "gt" / "0" / "a.mat", {"other": np.zeros((2, 2))})
    with pytest.raises(DatasetLayoutError, match="no variable 'blurMap'"):
        build_manifest("rtf", root, tmp_path / "data")
    savemat(root / "gt" / "0" / "a.mat", {"blurMap": np.zeros((H, W))})
    with pytest.raises(DatasetLayoutError, match="no input image named a"):
        build_manifest("rtf", root, tmp_path / "data")
    with pytest.raises(DatasetLayoutError, match="no gt/1.6/"):
        build_manifest("rtf", root, tmp_path / "data", noise_level="1.6")


# ---------------------------------------------------------------------------- depth sources


def test_sintel(tmp_path):
    root = tmp_path / "sintel"
    depth = np.arange(H * W, dtype=np.float32).reshape(H, W) / 10 + 1
    write_dpt(root / "training" / "depth" / "alley_1" / "frame_0001.dpt", depth)
    _img(root / "training" / "clean" / "alley_1" / "frame_0001.png")
    df = read_manifest(build_manifest("sintel", root, tmp_path / "data"))
    assert list(df["id"]) == ["alley_1_frame_0001"] and list(df["split"]) == ["train"]
    assert df["gt"][0] == ""
    np.testing.assert_array_equal(np.load(df["depth"][0]), depth)
    (root / "training" / "clean" / "alley_1" / "frame_0001.png").unlink()
    with pytest.raises(DatasetLayoutError, match="no clean image"):
        build_manifest("sintel", root, tmp_path / "data")


CALIB = """cam0=[1000 0 5; 0 1000 4; 0 0 1]
cam1=[1000 0 6; 0 1000 4; 0 0 1]
doffs=10
baseline=200
width=10
height=8
ndisp=64
"""


def test_middlebury(tmp_path):
    scene = tmp_path / "mb" / "Adirondack-perfect"
    _img(scene / "im0.png")
    disp = np.full((H, W), 90.0, np.float32)
    disp[0, 0] = np.inf
    write_pfm(scene / "disp0.pfm", disp)
    (scene / "calib.txt").write_text(CALIB)
    df = read_manifest(build_manifest("middlebury2014", tmp_path / "mb", tmp_path / "data"))
    assert list(df["id"]) == ["Adirondack-perfect"]
    z = np.load(df["depth"][0])
    assert np.isnan(z[0, 0])
    assert z[1, 1] == pytest.approx(200 * 1000 / (90 + 10) / 1000)  # 2 m
    write_pfm(scene / "disp0.pfm", disp[:, :-1])
    with pytest.raises(DatasetLayoutError, match="size mismatch.*disp0.pfm is 9x8"):
        build_manifest("middlebury2014", tmp_path / "mb", tmp_path / "data")


def test_synthia(tmp_path):
    seq = tmp_path / "synthia" / "SYNTHIA-SEQS-01-NIGHT"
    for cam in ("Stereo_Right/Omni_F", "Stereo_Left/Omni_B"):
        _img(seq / "RGB" / cam / "000000.png")
        d = seq / "Depth" / cam / "000000.png"
        d.parent.mkdir(parents=True)
        cv2.imwrite(str(d), np.full((H, W, 3), 250, np.uint16))  # 250 cm
    df = read_manifest(build_manifest("synthia", tmp_path / "synthia", tmp_path / "data"))
    assert list(df["id"]) == ["SYNTHIA-SEQS-01-NIGHT_Stereo_Right_Omni_F_000000"]
    np.testing.assert_allclose(np.load(df["depth"][0]), 2.5)
    df = read_manifest(
        build_manifest("synthia", tmp_path / "synthia", tmp_path / "d2", camera=None)
    )
    assert len(df) == 2


def test_ilsvrc_sampling_is_seeded(tmp_path):
    root = tmp_path / "imgs"
    for i in range(6):
        _img(root / f"n0{i % 2}" / f"ILSVRC2012_val_{i:08d}.JPEG")
    a = read_manifest(build_manifest("ilsvrc", root, tmp_path / "a", n=3, seed=1))
    b = read_manifest(build_manifest("ilsvrc", root, tmp_path / "b", n=3, seed=1))
    assert len(a) == 3 and list(a["id"]) == list(b["id"])
    assert set(a["split"]) == {"train"} and set(a["gt"]) == {""}


def test_config_entry_as_fourth_argument(tmp_path):
    # workflow/scripts/registry_manifest.py passes config datasets.<name> positionally
    root = _dut(tmp_path / "dut", white_cols=slice(3, None))
    entry = {"root": None, "polarity": "white_blurred", "sha256": {}}
    _quiet(build_manifest, "dut", root, tmp_path / "data", entry, seed=0)
    imgs = tmp_path / "imgs"
    for i in range(5):
        _img(imgs / f"{i}.png")
    out = build_manifest("ilsvrc", imgs, tmp_path / "il", {"n_images": 2}, seed=3)
    assert len(read_manifest(out)) == 2
    for scene in ("Adirondack-perfect", "Motorcycle-perfect"):
        _img(tmp_path / "mb" / scene / "im0.png")
        write_pfm(tmp_path / "mb" / scene / "disp0.pfm", np.full((H, W), 50.0, np.float32))
        (tmp_path / "mb" / scene / "calib.txt").write_text(CALIB)
    out = build_manifest(
        "middlebury2014", tmp_path / "mb", tmp_path / "m", {"scenes": ["Motorcycle"]}
    )
    assert list(read_manifest(out)["id"]) == ["Motorcycle-perfect"]


def test_rtf_input_per_noise_level(tmp_path):
    root = tmp_path / "RTF"
    (root / "gt" / "1").mkdir(parents=True)
    savemat(root / "gt" / "1" / "b.mat", {"blurMap": np.tile(np.arange(W) / 4.0, (H, 1))})
    _img(root / "input" / "0" / "b.png")
    _img(root / "input" / "1" / "b.png")
    out = build_manifest("rtf", root, tmp_path / "data", noise_level="1", conversion=None)
    assert "/input/1/b.png" in read_manifest(out)["image"][0]
    _img(root / "input" / "x" / "1" / "b.png")
    with pytest.raises(DatasetLayoutError, match="ambiguous input image"):
        build_manifest("rtf", root, tmp_path / "data", noise_level="1")
