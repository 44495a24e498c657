"""Depth formats: each file is built by hand (bytes written here, not by the reader's writer
only) so that reader and writer cannot share a mistake."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from defocus.io.depth import (
    DepthFormatError,
    disparity_to_depth_m,
    read_depth,
    read_dpt,
    read_middlebury_calib,
    read_pfm,
    read_synthia_depth,
    write_dpt,
    write_pfm,
)


def test_dpt_hand_built(tmp_path):
    # tag 202021.25, width 3, height 2, then row-major float32 (DATASETS.md section 6)
    vals = [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]
    raw = struct.pack("<fii", 202021.25, 3, 2) + struct.pack("<6f", *vals)
    p = tmp_path / "frame_0001.dpt"
    p.write_bytes(raw)
    d = read_dpt(p)
    assert d.dtype == np.float32 and d.shape == (2, 3)
    np.testing.assert_array_equal(d, np.array(vals, np.float32).reshape(2, 3))


def test_dpt_roundtrip_and_errors(tmp_path):
    depth = np.random.default_rng(0).random((5, 7)).astype(np.float32) * 10
    p = tmp_path / "a.dpt"
    write_dpt(p, depth)
    np.testing.assert_array_equal(read_dpt(p), depth)
    np.testing.assert_array_equal(read_depth(p), depth)
    bad = tmp_path / "bad.dpt"
    bad.write_bytes(struct.pack("<fii", 1.0, 7, 5) + depth.tobytes())
    with pytest.raises(DepthFormatError, match="wrong .dpt tag"):
        read_dpt(bad)
    short = tmp_path / "short.dpt"
    short.write_bytes(p.read_bytes()[:-4])
    with pytest.raises(DepthFormatError, match="truncated"):
        read_dpt(short)
    with pytest.raises(DepthFormatError, match="not found"):
        read_dpt(tmp_path / "nope.dpt")


def test_pfm_negative_scale_bottom_to_top(tmp_path):
    # 2 wide, 3 high, little-endian (scale -1). Stored rows bottom-to-top:
    # first stored row [5, 6] is the BOTTOM row of the image.
    stored = [5.0, 6.0, 3.0, 4.0, 1.0, float("inf")]
    p = tmp_path / "disp0.pfm"
    p.write_bytes(b"Pf\n2 3\n-1.0\n" + struct.pack("<6f", *stored))
    d = read_pfm(p)
    assert d.shape == (3, 2) and d.dtype == np.float32
    np.testing.assert_array_equal(d, np.array([[1, np.inf], [3, 4], [5, 6]], np.float32))


def test_pfm_big_endian_and_color_roundtrip(tmp_path):
    p = tmp_path / "be.pfm"
    p.write_bytes(b"Pf\n1 2\n1.0\n" + struct.pack(">2f", 7.0, 9.0))
    np.testing.assert_array_equal(read_pfm(p), np.array([[9.0], [7.0]], np.float32))
    rgb = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    for le in (True, False):
        q = tmp_path / f"rgb{le}.pfm"
        write_pfm(q, rgb, little_endian=le)
        np.testing.assert_array_equal(read_pfm(q), rgb)
    bad = tmp_path / "bad.pfm"
    bad.write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")
    with pytest.raises(DepthFormatError, match="not a PFM"):
        read_pfm(bad)


CALIB = """cam0=[3997.684 0 1176.728; 0 3997.684 1011.728; 0 0 1]
cam1=[3997.684 0 1307.839; 0 3997.684 1011.728; 0 0 1]
doffs=131.111
baseline=193.001
width=2964
height=1988
ndisp=280
isint=0
vmin=31
vmax=257
dyavg=0.918
dymax=1.516
"""  # realistic Middlebury 2014 calib.txt values (format of DATASETS.md section 8)


def test_middlebury_calib(tmp_path):
    p = tmp_path / "calib.txt"
    p.write_text(CALIB)
    c = read_middlebury_calib(p)
    assert c["f"] == pytest.approx(3997.684)
    assert (c["cx"], c["cy"]) == (pytest.approx(1176.728), pytest.approx(1011.728))
    assert c["doffs"] == pytest.approx(131.111) and c["baseline"] == pytest.approx(193.001)
    assert (c["width"], c["height"], c["ndisp"]) == (2964, 1988, 280)
    assert c["cam1"].shape == (3, 3)
    (tmp_path / "bad.txt").write_text("cam0=[1 0 0; 0 1 0; 0 0 1]\n")
    with pytest.raises(DepthFormatError, match="doffs"):
        read_middlebury_calib(tmp_path / "bad.txt")


def test_disparity_to_depth_and_pfm_dispatch(tmp_path):
    f, b, doffs = 3997.684, 193.001, 131.111
    disp = np.array([[100.0, np.inf], [0.0, np.nan]], np.float32)
    z = disparity_to_depth_m(disp, f, b, doffs)
    # hand value: 193.001 * 3997.684 / (100 + 131.111) / 1000 = 3.33858... m
    assert z[0, 0] == pytest.approx(193.001 * 3997.684 / 231.111 / 1000, rel=1e-6)
    assert np.isnan(z[0, 1]) and np.isnan(z[1, 0]) and np.isnan(z[1, 1])
    (tmp_path / "calib.txt").write_text(CALIB)
    write_pfm(tmp_path / "disp0.pfm", disp)
    with pytest.raises(DepthFormatError, match="calib"):
        read_depth(tmp_path / "disp0.pfm")
    z2 = read_depth(tmp_path / "disp0.pfm", calib=tmp_path / "calib.txt")
    np.testing.assert_allclose(z2, z, equal_nan=True)


def test_synthia_png(tmp_path):
    r = np.array([[100, 250], [0, 65535]], np.uint16)  # cm
    bgr = np.stack([r, r, r], axis=2)
    p = tmp_path / "000000.png"
    assert cv2.imwrite(str(p), bgr)
    d = read_synthia_depth(p)
    np.testing.assert_allclose(d, [[1.0, 2.5], [np.nan, 655.35]], equal_nan=True)
    np.testing.assert_allclose(read_depth(p), d, equal_nan=True)
    p8 = tmp_path / "rgb.png"
    cv2.imwrite(str(p8), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(DepthFormatError, match="16-bit"):
        read_synthia_depth(p8)


def test_npy_and_unknown_extension(tmp_path):
    a = np.ones((3, 4), np.float64) * 2
    np.save(tmp_path / "d.npy", a)
    out = read_depth(tmp_path / "d.npy")
    assert out.dtype == np.float32 and out.shape == (3, 4)
    with pytest.raises(DepthFormatError, match="unknown depth extension"):
        read_depth(tmp_path / "d.exr")
    with pytest.raises(DepthFormatError, match="unknown depth kind"):
        read_depth(tmp_path / "d.npy", kind="exr")
