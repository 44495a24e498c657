"""``defocus render`` through :mod:`defocus.render.cli` (configure_parser + run)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from defocus.io.image import read_gray, read_image, write_image
from defocus.render.cli import configure_parser, run


def _args(argv):
    return configure_parser(argparse.ArgumentParser()).parse_args(argv)


@pytest.fixture()
def inputs(tmp_path, photo):
    img = tmp_path / "im.png"
    write_image(img, photo)
    return tmp_path, img, photo


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_constant_depth_at_focus_returns_input(inputs, backend):
    tmp, img, photo = inputs
    np.save(tmp / "d.npy", np.full(photo.shape[:2], 2.5, np.float32))
    out = tmp / f"out_{backend}"
    argv = ["--image", str(img), "--depth", str(tmp / "d.npy"), "--out", str(out)]
    argv += ["--focus-depth", "2.5", "--backend", backend]
    assert run(_args(argv)) == 0
    np.testing.assert_array_equal(read_image(out / "blurred.png"), photo)
    assert np.all(np.load(out / "sigma.npy") == 0) and np.all(np.load(out / "coc.npy") == 0)
    assert np.all(read_gray(out / "binary.png") == 0)
    assert json.loads((out / "params.json").read_text())["focus_m"] == 2.5


def test_render_two_planes_seeded(inputs):
    tmp, img, photo = inputs
    depth = np.full(photo.shape[:2], 6.0, np.float32)
    depth[:, : photo.shape[1] // 2] = 1.5
    np.save(tmp / "d.npy", depth)
    outs = []
    for k in range(2):
        out = tmp / f"o{k}"
        argv = ["--image", str(img), "--depth", str(tmp / "d.npy"), "--out", str(out)]
        argv += ["--focal-length-mm", "50", "--max-coc", "11", "--focus-depth", "1.5"]
        assert run(_args(argv)) == 0
        outs.append(out)
    a, b = (read_image(o / "blurred.png") for o in outs)
    np.testing.assert_array_equal(a, b)
    coc = np.load(outs[0] / "coc.npy")
    assert coc[:, 0].max() == 0 and coc[:, -1].min() == pytest.approx(11.0)
    binary = read_gray(outs[0] / "binary.png")
    assert binary[0, 0] == 0 and binary[0, -1] == 255
    p = json.loads((outs[0] / "params.json").read_text())
    assert p["focal_length_mm"] == 50 and p["max_coc_px"] == 11


def test_f_number_and_max_coc_exclusive(inputs):
    with pytest.raises(SystemExit):
        _args(["--image", "a", "--depth", "b", "--out", "c", "--f-number", "2", "--max-coc", "9"])


def test_bad_depth_is_reported(inputs, capsys):
    tmp, img, photo = inputs
    np.save(tmp / "d.npy", np.full((3, 3), 2.0, np.float32))
    argv = ["--image", str(img), "--depth", str(tmp / "d.npy"), "--out", str(tmp / "o")]
    assert run(_args(argv)) == 2
    assert "depth shape" in capsys.readouterr().err


def test_render_never_writes_over_a_users_file(inputs, capsys):
    tmp, img, photo = inputs
    np.save(tmp / "d.npy", np.full(photo.shape[:2], 2.5, np.float32))
    base = ["--image", str(img), "--depth", str(tmp / "d.npy"), "--focus-depth", "2.5"]
    # a folder holding a user's blurred.png (no render wrote it): refused, file untouched
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "blurred.png").write_bytes(b"user data")
    assert run(_args([*base, "--out", str(mine)])) == 2
    assert "no render wrote" in capsys.readouterr().err
    assert (mine / "blurred.png").read_bytes() == b"user data"
    assert run(_args([*base, "--out", str(mine), "--overwrite"])) == 0
    # a previous render's folder is rewritten without asking
    assert run(_args([*base, "--out", str(mine)])) == 0
    # an input named like an output in --out is never replaced, even with --overwrite
    inside = tmp / "in"
    inside.mkdir()
    write_image(inside / "blurred.png", photo)
    argv = ["--image", str(inside / "blurred.png"), "--depth", str(tmp / "d.npy")]
    argv += ["--focus-depth", "2.5", "--out", str(inside), "--overwrite"]
    assert run(_args(argv)) == 2
    assert "is an input" in capsys.readouterr().err
    np.testing.assert_array_equal(read_image(inside / "blurred.png"), photo)
