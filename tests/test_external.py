"""Tests of released result maps: reading (defocus.io.maps), index maps
(defocus.datasets.index_maps), import (defocus.external), export (defocus.io.export),
scoring (defocus.evaluate.score, ``defocus score``) and the config checks.

Expected values are computed by hand from maps small enough to count (2x4 pixels), or are
exact arrays (bilinear 2x upscaling with half-pixel centres: source column x maps to
output columns with weights 1/4, 3/4, as written out in ``test_import_matches_...``).
"""

from __future__ import annotations

import argparse
import json

import cv2
import h5py
import numpy as np
import pytest

from defocus.cli import configure_score_parser, run_score
from defocus.config import ConfigError, external_config_errors, validate
from defocus.datasets.index_maps import read_index_map
from defocus.evaluate.evaluate import evaluate_file, write_outputs
from defocus.evaluate.score import score
from defocus.evaluate.tables import table1
from defocus.external import ExternalMapsWarning, import_maps
from defocus.io.export import export_maps
from defocus.io.image import write_image
from defocus.io.manifest import write_manifest
from defocus.io.maps import ExternalMapsError, read_map_file
from defocus.io.predictions import PredictionWriter, read_attrs

FAST = {"n_bootstrap": 20}


def _dataset(root, gts: dict[str, np.ndarray], train: tuple[str, ...] = ("train0",)):
    """A manifest whose test split is ``gts`` (bool masks, True = blurred) + train rows."""
    data = root / "data" / "demo"
    rows = []
    for iid, gt in {**gts, **{t: np.zeros((4, 4), bool) for t in train}}.items():
        h, w = gt.shape
        write_image(data / f"{iid}.png", np.full((h, w, 3), 100, np.uint8))
        write_image(data / f"{iid}_gt.png", gt.astype(np.uint8) * 255)
        split = "train" if iid in train else "test"
        rows.append({"id": iid, "split": split, "image": f"{iid}.png", "gt": f"{iid}_gt.png"})
    write_manifest(rows, data / "manifest.csv")
    return data / "manifest.csv"


def _u8(m):
    return (np.asarray(m, float) * 255).round().astype(np.uint8)


# two 2x4 images whose P, R and MAE are counted by hand below
GT_A = np.array([[1, 1, 1, 1], [0, 0, 0, 0]], bool)
MAP_A = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], float)  # TP 3, FP 1, FN 1: P = R = 3/4
GT_B = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], bool)
MAP_B = np.array([[1, 1, 1, 1], [0, 0, 0, 0]], float)  # TP 2, FP 2, FN 2: P = R = 1/2
# thresholds k >= 1 (binary maps): mean P = mean R = 5/8, F = 5/8.
# k = 0 (everything positive): P = mean blurred fraction = 1/2, R = 1,
#   F = 1.3 * 0.5 / (0.3 * 0.5 + 1) = 0.65 / 1.15.
# f_beta = max = 5/8; f_beta_mean = (0.65/1.15 + 255 * 5/8) / 256; MAE = (2/8 + 4/8) / 2.
F_BETA = 5 / 8
F_MEAN = (0.65 / 1.15 + 255 * 5 / 8) / 256
MAE = 3 / 8


def test_btbnet_index_map_is_the_shipped_split():
    idx = read_index_map("btbnet_cuhk")
    assert len(idx) == 100
    # DATASETS.md section 3 quotes these lines of D-DFFNet's split.txt
    assert idx["1"] == "out_of_focus0037"
    assert idx["76"] == "out_of_focus0607"
    assert idx["96"] == "out_of_focus0026"  # shipped as out_of_focus0026.JPG
    assert read_index_map(None) == {}


def test_index_map_file_and_errors(tmp_path):
    f = tmp_path / "idx.txt"
    f.write_text("# comment\n\n7.png--Photo_B.JPG\n")
    assert read_index_map(f) == {"7": "photo_b"}
    f.write_text("7.png photo_b.jpg\n")
    with pytest.raises(ExternalMapsError, match="line 1"):
        read_index_map(f)
    with pytest.raises(ExternalMapsError, match="neither a built-in"):
        read_index_map(tmp_path / "nope.txt")


def test_read_map_file_formats(tmp_path):
    # colour map with distinct channels -> BT.601 luma; alpha dropped; 16-bit / 65535
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 2] = 255  # pure red
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    assert read_map_file(tmp_path / "red.png") == pytest.approx(np.full((2, 2), 0.299), abs=1e-6)
    bgra = np.dstack([np.full((2, 2, 3), 51, np.uint8), np.zeros((2, 2), np.uint8)])
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    np.testing.assert_array_equal(read_map_file(tmp_path / "alpha.png"), np.float32(51 / 255))
    cv2.imwrite(str(tmp_path / "deep.png"), np.array([[0, 65535], [32768, 13107]], np.uint16))
    np.testing.assert_allclose(
        read_map_file(tmp_path / "deep.png"), [[0, 1], [32768 / 65535, 0.2]], rtol=1e-6
    )
    # an 8-bit value k is exactly the float32 threshold k/255 of the evaluation sweep
    cv2.imwrite(str(tmp_path / "k.png"), np.arange(256, dtype=np.uint8).reshape(16, 16))
    t = (np.arange(256) / 255).astype(np.float32).reshape(16, 16)
    np.testing.assert_array_equal(read_map_file(tmp_path / "k.png"), t)


def test_import_matches_and_converts(tmp_path):
    gts = {
        "out_of_focus0037": GT_A,
        "out_of_focus0117": GT_B,
        "imga": np.ones((8, 16), bool),
        "IMGB": np.zeros((4, 8), bool),
    }
    manifest = _dataset(tmp_path, gts)
    maps = tmp_path / "maps"
    maps.mkdir()
    # BTBNet-style result names through the shipped split: 1.bmp -> out_of_focus0037
    cv2.imwrite(str(maps / "1.bmp"), _u8(MAP_A))
    # upper-case extension, colour file with equal channels -> that channel
    cv2.imwrite(str(maps / "2.PNG"), np.dstack([_u8(MAP_B)] * 3))
    # upper-case JPEG named by id in another case; two flat 8x8 blocks decode to ~200, ~50
    jpg = np.hstack([np.full((8, 8), 200, np.uint8), np.full((8, 8), 50, np.uint8)])
    cv2.imwrite(str(maps / "IMGA.JPG"), jpg, [cv2.IMWRITE_JPEG_QUALITY, 100])
    # 16-bit, half the GT size: columns [1, 1, 0, 0] -> bilinear 2x upscale
    src = np.tile(np.array([65535, 65535, 0, 0], np.uint16), (2, 1))
    cv2.imwrite(str(maps / "imgb.png"), src)
    (maps / "README.txt").write_text("not a map")  # other extensions are ignored
    cv2.imwrite(str(maps / "train0.png"), np.zeros((4, 4), np.uint8))  # other split: ignored
    out = tmp_path / "pred.h5"
    info = import_maps(maps, manifest, out, "ext", index_map="btbnet_cuhk")
    assert info["n_images"] == 4 and info["n_resized"] == 1 and not info["subset"]
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["maps/out_of_focus0037"][()], MAP_A)
        np.testing.assert_array_equal(f["maps/out_of_focus0117"][()], MAP_B)
        assert f["maps/imga"][()] == pytest.approx(jpg / 255, abs=2 / 255)
        # half-pixel centres: output column j samples source x = (j + 0.5) / 2 - 0.5
        cols = np.array([1, 1, 1, 0.75, 0.25, 0, 0, 0], np.float32)
        np.testing.assert_allclose(f["maps/IMGB"][()], np.tile(cols, (4, 1)), atol=1e-6)
        assert np.isnan(f["seconds/imga"][()])
        assert list(f["maps"]) == sorted(gts)
    attrs = read_attrs(out)
    assert attrs["device"] == "external" and attrs["method"] == "ext"
    assert attrs["dataset"] == "demo" and not attrs["subset"]
    assert attrs["n_missing"] == 0 and attrs["n_resized"] == 1


def _two_image_folder(tmp_path, invert=False, drop=None):
    manifest = _dataset(tmp_path, {"a": GT_A, "b": GT_B})
    maps = tmp_path / ("maps_sharp" if invert else "maps")
    maps.mkdir(exist_ok=True)
    ma, mb = (1 - MAP_A, 1 - MAP_B) if invert else (MAP_A, MAP_B)
    if drop != "a":
        cv2.imwrite(str(maps / "A.PNG"), _u8(ma))
    if drop != "b":
        cv2.imwrite(str(maps / "b.tif"), (mb * 65535).astype(np.uint16))  # 16-bit TIFF
    return maps, manifest


def test_row_by_hand_and_inverted_polarity(tmp_path):
    maps, manifest = _two_image_folder(tmp_path)
    row = score(maps, manifest, "ext", protocol=FAST)
    assert (row["method"], row["dataset"], row["n_images"]) == ("ext", "demo", 2)
    assert row["f_beta"] == pytest.approx(F_BETA, abs=1e-12)
    assert row["f_beta_mean"] == pytest.approx(F_MEAN, abs=1e-12)
    assert row["mae"] == pytest.approx(MAE, abs=1e-7)
    assert row["external"] is True and row["subset"] is False and row["n_missing"] == 0
    assert bool(row["reference"]) is False
    sharp, _ = _two_image_folder(tmp_path, invert=True)
    inv = score(sharp, manifest, "ext", polarity="white_sharp", protocol=FAST)
    for k in ("f_beta", "f_beta_mean", "f_beta_adaptive", "mae", "accuracy", "iou"):
        assert inv[k] == pytest.approx(row[k], abs=1e-7), k
    # the same folder read with the wrong polarity scores differently (sanity)
    wrong = score(sharp, manifest, "ext", protocol=FAST)
    assert wrong["mae"] == pytest.approx(1 - MAE, abs=1e-7)


def test_missing_maps_error_lists_ids(tmp_path):
    maps, manifest = _two_image_folder(tmp_path, drop="b")
    with pytest.raises(ExternalMapsError, match=r"no map for 1 of 2 test id\(s\).*: b \(pass"):
        import_maps(maps, manifest, tmp_path / "p.h5", "ext")
    assert not (tmp_path / "p.h5").exists()


def test_subset_is_recorded_and_scored(tmp_path):
    maps, manifest = _two_image_folder(tmp_path, drop="b")
    with pytest.warns(ExternalMapsWarning, match="subset: 1 of 2"):
        info = import_maps(maps, manifest, tmp_path / "p.h5", "ext", allow_subset=True)
    assert info["subset"] and info["missing_ids"] == ["b"]
    attrs = read_attrs(tmp_path / "p.h5")
    assert bool(attrs["subset"]) is True and attrs["n_missing"] == 1
    assert json.loads(attrs["missing_ids"]) == ["b"]
    with pytest.warns(ExternalMapsWarning):
        row = score(maps, manifest, "ext", allow_subset=True, protocol=FAST)
    # image a alone: F = 1.3 * .75 * .75 / (.3 * .75 + .75) = .75 at k >= 1; MAE = 2/8
    assert row["n_images"] == 1 and row["subset"] is True and row["n_missing"] == 1
    assert row["f_beta"] == pytest.approx(0.75) and row["mae"] == pytest.approx(0.25)


def test_unreadable_file_is_named(tmp_path):
    maps, manifest = _two_image_folder(tmp_path)
    (maps / "b.tif").write_bytes(b"this is not a TIFF")
    with pytest.raises(ExternalMapsError, match=r"id 'b'.*cannot decode.*b\.tif"):
        import_maps(maps, manifest, tmp_path / "p.h5", "ext")
    assert not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".*.tmp"))


def test_constant_map_and_stray_files_warn(tmp_path):
    maps, manifest = _two_image_folder(tmp_path)
    cv2.imwrite(str(maps / "A.PNG"), np.full((2, 4), 77, np.uint8))
    cv2.imwrite(str(maps / "stray.png"), np.zeros((2, 2), np.uint8))
    with pytest.warns(ExternalMapsWarning) as rec:
        info = import_maps(maps, manifest, tmp_path / "p.h5", "ext")
    text = " ".join(str(w.message) for w in rec)
    assert "one value everywhere" in text and "A.PNG" in text
    assert "match no id" in text and "stray.png" in text
    assert info["constant"] == ["A.PNG"] and info["unmatched"] == ["stray.png"]


def test_nothing_matches_and_duplicates(tmp_path):
    manifest = _dataset(tmp_path, {"a": GT_A, "b": GT_B})
    maps = tmp_path / "maps"
    maps.mkdir()
    cv2.imwrite(str(maps / "1.png"), _u8(MAP_A))
    with pytest.raises(ExternalMapsError, match=r"no map .* matches any.*1\.png.*index_map"):
        import_maps(maps, manifest, tmp_path / "p.h5", "ext", allow_subset=True)
    cv2.imwrite(str(maps / "a.png"), _u8(MAP_A))
    cv2.imwrite(str(maps / "A.bmp"), _u8(MAP_A))
    with pytest.raises(ExternalMapsError, match="two map files match id 'a'"):
        import_maps(maps, manifest, tmp_path / "p.h5", "ext", allow_subset=True)
    with pytest.raises(ExternalMapsError, match="maps folder not found"):
        import_maps(tmp_path / "none", manifest, tmp_path / "p.h5", "ext")
    with pytest.raises(ExternalMapsError, match="polarity"):
        import_maps(maps, manifest, tmp_path / "p.h5", "ext", polarity="black")


def _random_prediction(tmp_path, n=3):
    rng = np.random.default_rng(0)
    gts = {f"im{i}": rng.random((12, 16)) < 0.5 for i in range(n)}
    manifest = _dataset(tmp_path, gts)
    pred = tmp_path / "pred" / "ref_gradient" / "demo.h5"
    maps = {}
    with PredictionWriter(pred, method="ref_gradient", dataset="demo") as w:
        for iid, gt in gts.items():
            m = np.clip(0.4 * gt + 0.6 * rng.random(gt.shape), 0, 1).astype(np.float32)
            m[0, :3] = [0.0, 1.0, np.float32(100 / 255)]  # edges and a value on a threshold
            maps[iid] = m
            w.add(iid, m, seconds=0.01)
    return pred, manifest, maps


def test_export_import_roundtrip(tmp_path):
    pred, manifest, maps = _random_prediction(tmp_path)
    _, c0, s0 = evaluate_file(pred, manifest, protocol=FAST)
    for rounding in ("nearest", "floor"):
        out = tmp_path / "exports" / rounding
        written = export_maps(pred, out, rounding=rounding)
        assert sorted(p.name for p in written) == ["im0.png", "im1.png", "im2.png"]
        assert cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED).dtype == np.uint8
        back = tmp_path / f"back_{rounding}.h5"
        import_maps(out, manifest, back, "ext_ref_gradient")
        with h5py.File(back, "r") as f:
            for iid, m in maps.items():
                d = f[f"maps/{iid}"][()] - m
                if rounding == "nearest":  # rint(255 m) / 255
                    assert np.abs(d).max() <= 1 / 510 + 1e-6
                else:  # max{k : m >= k/255} / 255: never above, less than 1/255 below
                    assert d.max() <= 0 and d.min() > -1 / 255
        _, c1, s1 = evaluate_file(back, manifest, protocol=FAST)
        assert abs(s1["mae"] - s0["mae"]) <= (1 / 510 if rounding == "nearest" else 1 / 255)
        if rounding == "floor":  # every thresholded decision is kept: identical curves
            np.testing.assert_array_equal(c1["tp"], c0["tp"])
            np.testing.assert_array_equal(c1["fp"], c0["fp"])
            for k in ("f_beta", "f_beta_ci_low", "f_beta_ci_high", "f_beta_mean"):
                assert s1[k] == s0[k], k
    with pytest.raises(ValueError, match="lossless"):
        export_maps(pred, tmp_path / "x", fmt="jpg")


def test_nan_seconds_through_evaluate_and_tables(tmp_path):
    maps, manifest = _two_image_folder(tmp_path)
    h5 = tmp_path / "p.h5"
    import_maps(maps, manifest, h5, "ext")
    per_image, curves, summary = evaluate_file(h5, manifest, protocol=FAST)
    assert per_image["seconds"].isna().all()
    assert np.isnan(summary["seconds_per_image"]) and summary["device"] == "external"
    out = tmp_path / "out"
    write_outputs(per_image, curves, summary, out / "m.csv", out / "c.npz", out / "s.json")
    s = json.loads((out / "s.json").read_text())
    assert s["seconds_per_image"] is None  # JSON null, as every non-finite summary float
    row = table1([s]).iloc[0]
    assert row["f_beta"] == pytest.approx(F_BETA)


def test_cli(tmp_path, capsys, root):
    maps, manifest = _two_image_folder(tmp_path)
    p = argparse.ArgumentParser()
    configure_score_parser(p)
    args = p.parse_args(
        ["--maps", str(maps), "--dataset", "demo", "--manifest", str(manifest), "--json"]
        + ["--protocol", json.dumps(FAST)]
    )
    assert run_score(args) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["method"] == "maps" and row["f_beta"] == pytest.approx(F_BETA)
    # the workflow's protocol from a config file (its `evaluation` and `seed`), then overrides
    args = p.parse_args(
        ["--maps", str(maps), "--dataset", "demo", "--manifest", str(manifest), "--json"]
        + ["--config", str(root / "config" / "config.yaml"), "--protocol", json.dumps(FAST)]
    )
    assert run_score(args) == 0
    assert json.loads(capsys.readouterr().out)["f_beta"] == pytest.approx(F_BETA)
    (maps / "b.tif").unlink()
    args = p.parse_args(["--maps", str(maps), "--dataset", "demo", "--manifest", str(manifest)])
    assert run_score(args) == 2
    assert "no map for 1 of 2" in capsys.readouterr().err
    args = p.parse_args(
        ["--maps", str(maps), "--dataset", "demo", "--manifest", str(manifest), "--subset"]
    )
    with pytest.warns(ExternalMapsWarning):
        assert run_score(args) == 0
    assert "subset" in capsys.readouterr().out


def test_external_config_errors(tmp_path):
    ok = {"external_methods": {"btbnet": {"maps": {"cuhk": "x"}, "index_map": "btbnet_cuhk"}}}
    assert external_config_errors(ok, ["lbp"]) == []
    bad = {
        "external_methods": {
            "lbp": {"maps": {"cuhk": "x"}},
            "e2": {"maps": {"cuhk": "x"}, "index_map": str(tmp_path / "none")},
        }
    }
    errors = " ".join(external_config_errors(bad, ["lbp"]))
    assert "lbp: name is also" in errors and "e2.index_map" in errors


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"maps": {}}, "e2.maps"),
        ({"maps": {"cuhk": "x"}, "polarity": "black"}, "e2.polarity"),
        ({"maps": {"cuhk": "x"}, "interpolation": "lanczos"}, "e2.interpolation"),
        ({"polarity": "white_sharp"}, "e2"),
    ],
)
def test_external_entries_checked_by_the_schema(entry, key):
    cfg = {"test_sets": ["cuhk"], "methods": {"run": ["lbp"]}, "external_methods": {"e2": entry}}
    with pytest.raises(ConfigError, match=rf"external_methods\.{key}\b"):
        validate(cfg)
    cfg = {"test_sets": ["cuhk"], "methods": {"run": ["lbp"]}, "external_methods": {"a@b": {}}}
    with pytest.raises(ConfigError, match="external_methods"):
        validate(cfg)


def test_subset_file_through_evaluate_file(tmp_path):
    maps, manifest = _two_image_folder(tmp_path, drop="b")
    h5 = tmp_path / "p.h5"
    with pytest.warns(ExternalMapsWarning):
        import_maps(maps, manifest, h5, "ext", allow_subset=True)
    _, _, summary = evaluate_file(h5, manifest, protocol=FAST)  # the full manifest
    assert summary["n_images"] == 1 and summary["f_beta"] == pytest.approx(0.75)
    row = table1([summary]).iloc[0]
    assert row["external"] and row["n_missing"] == 1
