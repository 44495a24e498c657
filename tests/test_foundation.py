"""Contracts of the foundation: config schema, IO, manifests, prediction files, registry."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from defocus.config import ConfigError, load_config, validate
from defocus.io.atomic import atomic_path
from defocus.io.image import ImageError, map_to_uint8, read_image, to_rgb_uint8, write_image
from defocus.io.manifest import ManifestError, read_manifest, write_manifest
from defocus.io.predictions import PredictionError, PredictionWriter, iter_maps, read_attrs
from defocus.methods.base import MethodError, minmax_normalise
from defocus.methods.registry import get_method, parse_name
from defocus.predict import predict_files, predict_manifest


# -- config -------------------------------------------------------------------------------
def test_default_and_paper_configs_validate(root):
    for name in ("config.yaml", "paper.yaml"):
        cfg = load_config(root / "config" / name)
        assert cfg["evaluation"]["beta2"] == pytest.approx(0.3)
        assert cfg["evaluation"]["n_thresholds"] == 256


def test_defaults_are_filled():
    cfg = validate({"test_sets": ["x"], "methods": {"run": ["ref_gradient"]}})
    assert cfg["seed"] == 0 and cfg["evaluation"]["averaging"] == "image"
    assert cfg["methods"]["params"] == {}


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"test_sets": ["x"], "methods": {"run": ["no_such_method"]}}, "methods/run/0"),
        ({"test_sets": ["x"], "methods": {"run": ["lbp"]}, "evaluation": {"beta2": -1}}, "beta2"),
        ({"methods": {"run": ["lbp"]}}, "test_sets"),
        (
            {
                "test_sets": ["x"],
                "methods": {"run": ["lbp"]},
                "syndof": {"s": {"sources": ["demo_procedural"], "camera": {"max_coc": -3}}},
            },
            "max_coc",
        ),
    ],
)
def test_bad_config_is_rejected_with_its_path(bad, where):
    with pytest.raises(ConfigError, match=where.split("/")[0]):
        validate(bad)


def test_snakemake_rejects_bad_config_at_start(root, tmp_path):
    cfg = yaml.safe_load((root / "config" / "config.yaml").read_text())
    cfg["methods"]["run"] = ["ref_gradient", "not_a_method"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad), "-d", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "not_a_method" in out and "does not match" in out


def test_dhde_cpu_overlay_merges_and_plans(root):
    # config/dhde_cpu.yaml only overrides keys of config/config.yaml (Snakemake merges it)
    from snakemake.utils import update_config

    cfg = yaml.safe_load((root / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((root / "config" / "dhde_cpu.yaml").read_text()))
    cfg = validate(cfg)
    assert len(cfg["demo_sources"]["photos"]) == 16 and cfg["patches"]["n_per_image"] == 300
    assert cfg["dhde_features"]["datasets"] == ["demo_sharp"]  # kept from config.yaml
    # an overlay names the demo config too (a --configfile replaces the Snakefile's default);
    # -n -F plans every job of the target and runs none
    target = "results/tables/table_dhde_features.csv"
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-F", target, "--configfile"]
        + ["config/config.yaml", "config/dhde_cpu.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "dhde_feature_table" in r.stdout + r.stderr


def test_release_weights_replace_the_training_data(root, tmp_path):
    # dhde@weights=release trains on nothing: its model comes from fetch_weights
    overlay = tmp_path / "rel.yaml"
    overlay.write_text("methods:\n  run: [ref_gradient, 'dhde@weights=release']\n")
    target = "results/models/dhde@weights=release/model.pt"
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-F", target, "--configfile"]
        + ["config/config.yaml", str(overlay)],  # an overlay on the demo config
        cwd=root,
        capture_output=True,
        text=True,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-2000:]
    assert "fetch_weights" in out and "train" in out
    assert "sample_patches" not in out and "demo_sharp" not in out


# -- IO -----------------------------------------------------------------------------------
def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_to_rgb_uint8_conversions():
    g = np.array([[0, 255]], np.uint8)
    assert to_rgb_uint8(g).shape == (1, 2, 3)
    rgba = np.zeros((1, 1, 4), np.uint8)  # transparent black -> white background
    assert to_rgb_uint8(rgba)[0, 0].tolist() == [255, 255, 255]
    assert to_rgb_uint8(np.full((1, 1), 65535, np.uint16))[0, 0, 0] == 255
    assert to_rgb_uint8(np.full((1, 1, 3), 0.5))[0, 0, 0] == 128


def test_image_roundtrip_and_errors(tmp_path, photo):
    write_image(tmp_path / "p.png", photo)
    assert np.array_equal(read_image(tmp_path / "p.png"), photo)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match="cannot decode"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "missing.png")
    assert map_to_uint8(np.array([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]


def test_manifest_roundtrip_relative_paths(tmp_path, photo):
    write_image(tmp_path / "d" / "image" / "a.png", photo)
    rows = [{"id": "a", "split": "test", "image": tmp_path / "d" / "image" / "a.png", "gt": ""}]
    df = write_manifest(rows, tmp_path / "d" / "manifest.csv")
    assert df["image"][0] == "image/a.png"
    back = read_manifest(tmp_path / "d" / "manifest.csv")
    assert back["image"][0] == str((tmp_path / "d" / "image" / "a.png").resolve())
    with pytest.raises(ManifestError, match="duplicate"):
        write_manifest(rows * 2, tmp_path / "e" / "manifest.csv")
    with pytest.raises(ManifestError, match="split"):
        write_manifest([{**rows[0], "split": "dev"}], tmp_path / "f" / "manifest.csv")
    (tmp_path / "d" / "image" / "a.png").unlink()
    with pytest.raises(ManifestError, match="missing file"):
        read_manifest(tmp_path / "d" / "manifest.csv")


def test_prediction_file_contract(tmp_path):
    path = tmp_path / "p.h5"
    with PredictionWriter(path, "m", "d", config={"a": 1}, raw_unit="px") as w:
        w.add("x", np.full((4, 5), 0.25), 0.5, raw=np.full((4, 5), 2.0))
        w.add("y", np.zeros((4, 5)), 1.5)
    attrs = read_attrs(path)
    assert attrs["n_images"] == 2 and attrs["seconds_per_image"] == pytest.approx(1.0)
    assert [i for i, _, _ in iter_maps(path, ["y", "x"])] == ["y", "x"]
    with h5py.File(path) as f:
        assert f["raw/x"].attrs["unit"] == "px" and f["maps/x"].dtype == np.float32
    with pytest.raises(PredictionError, match="lacks"):
        list(iter_maps(path, ["z"]))
    with (
        pytest.raises(PredictionError, match=r"\[0, 1\]"),
        PredictionWriter(tmp_path / "q.h5", "m", "d") as w,
    ):
        w.add("x", np.full((2, 2), 1.5), 0.1)
    assert not (tmp_path / "q.h5").exists() and not list(tmp_path.glob(".q.h5*"))


# -- registry and reference methods ---------------------------------------------------------
def test_parse_ablation_names():
    assert parse_name("defusionnet@steps=1,fuse=false") == (
        "defusionnet",
        {"steps": 1, "fuse": False},
    )
    assert parse_name("lbp") == ("lbp", {})
    with pytest.raises(ValueError, match="key=value"):
        parse_name("lbp@oops")


def test_unknown_method_and_parameter():
    with pytest.raises(KeyError, match="unknown method"):
        get_method("nope")
    with pytest.raises(ValueError, match="valid: \\['window'\\]"):
        get_method("ref_gradient@size=3")


def test_minmax_normalise():
    assert minmax_normalise(np.array([1.0, 3.0])).tolist() == [0.0, 1.0]
    # a constant map is undecided (0.5), not "all in focus" (0)
    assert minmax_normalise(np.full(3, 7.0)).tolist() == [0.5, 0.5, 0.5]


def test_reference_methods_on_half_blurred_photo(photo):
    import cv2

    img = photo.copy()
    img[:, 64:] = cv2.GaussianBlur(photo, (0, 0), 3.0)[:, 64:]
    assert np.all(get_method("ref_all_blurred").predict(img) == 1.0)
    m = get_method("ref_gradient").predict(img)
    assert m.shape == img.shape[:2] and m.dtype == np.float32
    # the blurred half has less gradient energy -> higher blur score
    assert m[:, 72:].mean() > m[:, :56].mean() + 0.2


def test_predict_manifest_and_files(tmp_path, photo):
    for i in range(2):
        write_image(tmp_path / "image" / f"{i}.png", photo)
    rows = [
        {"id": str(i), "split": "test", "image": tmp_path / "image" / f"{i}.png", "gt": ""}
        for i in range(2)
    ]
    write_manifest(rows, tmp_path / "manifest.csv")
    out = predict_manifest(
        "ref_gradient@window=9", {}, tmp_path / "manifest.csv", tmp_path / "p.h5"
    )
    maps = {i: m for i, m, _ in iter_maps(out, ["0", "1"])}
    assert np.array_equal(maps["0"], maps["1"])  # deterministic
    assert read_attrs(out)["method"] == "ref_gradient@window=9"
    # RGBA and greyscale inputs of odd size through the CLI path
    rgba = np.dstack([photo[:51, :77], np.full((51, 77), 255, np.uint8)])
    write_image(tmp_path / "in" / "g.png", photo[:51, :77, 0])
    import cv2

    from defocus.io.atomic import atomic_path as ap

    with ap(tmp_path / "in" / "a.png") as t:
        cv2.imwrite(str(t), rgba)
    written = predict_files("ref_gradient", [tmp_path / "in"], tmp_path / "out", raw=True)
    assert sorted(p.name for p in written) == ["a.png", "g.png"]
    assert read_image(tmp_path / "out" / "a.png").shape == (51, 77, 3)
    assert np.load(tmp_path / "out" / "g.npy").shape == (51, 77)


def test_learned_method_without_checkpoint_says_how_to_make_one():
    from defocus.methods.base import Method

    class Learned(Method):
        name = "toy"
        learned = True

    with pytest.raises(MethodError, match="snakemake results/models/toy/model.pt"):
        Learned().load(None)


def test_cli_help_and_methods(root):
    r = subprocess.run(
        [sys.executable, "-m", "defocus.cli", "methods"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "ref_gradient" in r.stdout
    r = subprocess.run(
        [sys.executable, "-c", "import sys, defocus.cli; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip() == "False"  # --help must not import torch


def test_manifest_accepts_paths_relative_to_the_working_directory(tmp_path, photo, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "d" / "image" / "a.png", photo)
    rows = [{"id": "a", "split": "train", "image": "d/image/a.png", "gt": ""}]
    assert write_manifest(rows, "d/manifest.csv")["image"][0] == "image/a.png"
    assert read_manifest("d/manifest.csv")["image"][0] == str(tmp_path / "d" / "image" / "a.png")


def test_schema_ships_inside_the_package(root):
    import tomllib
    from pathlib import Path

    import defocus
    from defocus.config import SCHEMA_PATH

    assert SCHEMA_PATH.parent == Path(defocus.__file__).parent and SCHEMA_PATH.is_file()
    data = tomllib.loads((root / "pyproject.toml").read_text())
    assert "schema.yaml" in data["tool"]["setuptools"]["package-data"]["defocus"]
    # the repository path the Snakefile and the docs use is the same file
    assert (root / "config" / "schema.yaml").resolve() == SCHEMA_PATH.resolve()
