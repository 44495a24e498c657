"""Nothing the user owns is lost, nothing stale is used, nothing wrong is silent.

Each test is a probe of one failure a new user met: inputs overwritten by ``predict``, a
misspelt config name that ends in "Nothing to be done", masks read as all-sharp, a batch
stopped by one bad file, tracebacks instead of one line naming the file and the fix.
"""

import subprocess
import sys

import numpy as np
import pytest

from defocus.cli import main
from defocus.config import config_errors, method_param_errors, validate
from defocus.io.image import ImageError, read_gray, read_image, write_image
from defocus.io.manifest import (
    ManifestError,
    check_gt_classes,
    folder_fingerprint,
    write_manifest,
)
from defocus.methods.base import MethodError
from defocus.predict import PredictBatchError, predict_files, run_one


def _cv2_write(path, img):
    """Write ``img`` as stored (OpenCV channel order), for masks with alpha."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


# --------------------------------------------------------------------------------------
# 1. predict never writes over an input or over another output of the same run
# --------------------------------------------------------------------------------------


def test_predict_refuses_an_output_folder_that_holds_inputs(tmp_path, photo, capsys):
    write_image(tmp_path / "in" / "photo.png", photo)
    before = (tmp_path / "in" / "photo.png").read_bytes()
    rc = main(
        ["predict", "--method", "ref_gradient", "--out", str(tmp_path / "in"), str(tmp_path / "in")]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "holds 1 of the input images" in err and "--allow-input-folder" in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "in" / "photo.png").read_bytes() == before


def test_predict_in_the_input_folder_when_asked_keeps_every_input(tmp_path, photo):
    write_image(tmp_path / "in" / "photo.png", photo)
    write_image(tmp_path / "in" / "photo.jpg", photo)
    write_image(tmp_path / "in" / "other.png", photo[::-1])
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    written = predict_files(
        "ref_gradient", [tmp_path / "in"], tmp_path / "in", allow_input_folder=True
    )
    assert sorted(p.name for p in written) == ["other.png.png", "photo.jpg.png", "photo.png.png"]
    for name, data in before.items():  # no input changed
        assert (tmp_path / "in" / name).read_bytes() == data


def test_predict_inputs_sharing_a_stem_get_distinct_outputs(tmp_path, photo):
    write_image(tmp_path / "in" / "photo.jpg", photo)
    write_image(tmp_path / "in" / "photo.png", photo[:, ::-1])
    write_image(tmp_path / "in" / "solo.png", photo)
    written = predict_files("ref_gradient", [tmp_path / "in"], tmp_path / "out", raw=True)
    assert sorted(p.name for p in written) == ["photo.jpg.png", "photo.png.png", "solo.png"]
    a = read_image(tmp_path / "out" / "photo.jpg.png")
    b = read_image(tmp_path / "out" / "photo.png.png")
    assert not np.array_equal(a, b)  # two maps, not one written twice
    assert (tmp_path / "out" / "photo.jpg.npy").exists()


def test_predict_same_name_in_two_folders_is_an_error_before_writing(tmp_path, photo):
    write_image(tmp_path / "a" / "p.png", photo)
    write_image(tmp_path / "b" / "p.png", photo)
    with pytest.raises(ValueError, match="would both be written as"):
        predict_files("ref_gradient", [tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------
# 6. batches go on past bad files; hidden files are skipped
# --------------------------------------------------------------------------------------


def test_predict_batch_continues_past_bad_files_and_skips_hidden_ones(tmp_path, photo, capsys):
    folder = tmp_path / "in"
    write_image(folder / "b_good.png", photo)
    write_image(folder / "d_good.jpg", photo)
    (folder / "._b_good.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # sorts first
    (folder / ".DS_Store").write_bytes(b"Bud1")
    (folder / "a_corrupt.jpg").write_bytes(b"not a jpeg")
    (folder / "c_truncated.png").write_bytes((folder / "b_good.png").read_bytes()[:60])
    out = tmp_path / "out"
    rc = main(
        [
            "predict",
            "--method",
            "ref_gradient",
            "--out",
            str(out),
            str(folder),
            str(tmp_path / "nope.png"),
        ]
    )
    assert rc == 1
    captured = capsys.readouterr()
    assert "wrote 2 map(s)" in captured.out
    assert "3 input(s) failed" in captured.err
    for name in ("a_corrupt.jpg", "c_truncated.png", "nope.png"):
        assert name in captured.err
    assert "._b_good" not in captured.err and "DS_Store" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["b_good.png", "d_good.png"]
    with pytest.raises(PredictBatchError) as e:
        predict_files("ref_gradient", [folder / "a_corrupt.jpg", folder / "b_good.png"], out)
    assert [p.name for p in e.value.written] == ["b_good.png"]


# --------------------------------------------------------------------------------------
# 5. large photos: the max_side policy
# --------------------------------------------------------------------------------------


class _Spy:
    """A method that records the size it was given and returns a known sigma map."""

    name = "spy"
    has_raw = True
    seen = None

    def predict_raw(self, image):
        self.seen = image.shape[:2]
        h, w = image.shape[:2]
        return np.tile(np.linspace(0.0, 4.0, w, dtype=np.float32), (h, 1))


def test_max_side_shrinks_the_input_and_resizes_the_map_back():
    spy = _Spy()
    image = np.zeros((300, 1000, 3), np.uint8)
    blur, raw, _ = run_one(spy, image, max_side=250)
    assert spy.seen == (75, 250)
    assert blur.shape == raw.shape == (300, 1000)
    # sigma in pixels of the input: 4 px at the shrunk size is 16 px at full size
    assert raw.max() == pytest.approx(16.0, rel=0.02)
    assert 0.0 <= blur.min() and blur.max() <= 1.0
    run_one(spy, image, max_side=0)
    assert spy.seen == (300, 1000)  # 0 = full resolution
    with pytest.raises(ValueError, match="max_side"):
        run_one(spy, image, max_side=-5)


def test_predict_help_states_the_max_side_policy():
    r = subprocess.run(
        [sys.executable, "-m", "defocus", "predict", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "--max-side" in text and "shrunk" in text and "resized back" in text


# --------------------------------------------------------------------------------------
# 8. python -m defocus
# --------------------------------------------------------------------------------------


def test_python_dash_m_defocus_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "defocus", "methods"], capture_output=True, text=True)
    assert r.returncode == 0 and "ref_gradient" in r.stdout


# --------------------------------------------------------------------------------------
# 3. config names and method parameters
# --------------------------------------------------------------------------------------


def _cfg(**extra):
    cfg = {
        "test_sets": ["demo_syndof"],
        "syndof": {"demo_syndof": {"sources": ["demo_procedural"]}},
    }
    cfg.update(extra)
    return validate(cfg)


KNOWN = {"cuhk", "dut", "demo_syndof", "demo_sharp"}


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"methods": {"params": {"lbpp": {"t_lbp": 0.1}}}}, "methods.params.lbpp"),
        ({"methods": {"params": {"lbp": {"t_lpb": 0.1}}}}, "methods.params.lbp.t_lpb"),
        ({"methods": {"params": {"hifst": {"pre_sigma": -1}}}}, "methods.params.hifst.pre_sigma"),
        ({"methods": {"params": {"ref_gradient": {"window": 0}}}}, "ref_gradient.window"),
        ({"methods": {"params": {"ref_gradient": {"window": "9"}}}}, "ref_gradient.window"),
        ({"methods": {"params": {"lbp": {"refine": 1}}}}, "methods.params.lbp.refine"),
        ({"methods": {"run": ["ref_gradient@window=-3"]}}, "methods.run[ref_gradient@window=-3]"),
        ({"training": {"data": {"zeng": {"real": ["cuhkk"]}}}}, "training.data.zeng.real"),
        ({"training": {"data": {"zneg": {"real": ["cuhk"]}}}}, "training.data.zneg"),
        ({"datasets": {"cuhk": {"root": "/no/such/folder"}}}, "datasets.cuhk.root"),
        (
            {"external_methods": {"BTBNet": {"maps": {"cuhk": "/no/such/maps"}}}},
            "external_methods.BTBNet.maps.cuhk",
        ),
        (
            {"external_methods": {"BTBNet": {"maps": {"cuhkk": "results/exports/x/cuhk"}}}},
            "external_methods.BTBNet.maps.cuhkk",
        ),
    ],
)
def test_config_names_and_parameters_are_checked(extra, key):
    errors = config_errors(_cfg(**extra), KNOWN, made_folders=("results/exports",))
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"config key {key}") or key in errors[0]


def test_valid_names_pass_and_made_folders_need_not_exist():
    cfg = _cfg(
        methods={"run": ["ref_gradient@window=5", "lbp"], "params": {"hifst": {"pre_sigma": 0.0}}},
        training={"data": {"zeng": {"real": ["cuhk"]}}},
        external_methods={"X": {"maps": {"cuhk": "results/exports/lbp/cuhk"}}},
    )
    assert config_errors(cfg, KNOWN, made_folders=("results/exports",)) == []
    assert method_param_errors("asvb", {"win_sigma": 3}, "p") == []  # int for a float


def test_every_shipped_config_passes_the_name_checks(root):
    import yaml

    from defocus.datasets.registry import REGISTRY

    for name in ("config.yaml", "test.yaml", "paper.yaml"):
        cfg = validate(yaml.safe_load((root / "config" / name).read_text()))
        known = set(REGISTRY) | set(cfg["syndof"]) | {"demo_sharp"}
        cfg["datasets"] = {k: v for k, v in cfg["datasets"].items() if not v.get("root")}
        assert config_errors(cfg, known, made_folders=("results/exports",)) == [], name


def _snakemake_n(root, tmp_path, cfg_text):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(cfg_text)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", str(root / "Snakefile")]
        + ["--configfile", str(cfg)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


def test_misspelt_top_level_key_prints_one_line(root, tmp_path):
    r = _snakemake_n(root, tmp_path, "tset_sets: [demo_syndof]\ntest_sets: [demo_syndof]\n")
    assert r.returncode != 0
    out = (r.stdout + r.stderr).strip().splitlines()
    assert len(out) == 1, out
    assert out[0].startswith("config key tset_sets: unknown key")


def test_snakemake_stops_at_start_on_a_misspelt_dataset_or_parameter(root, tmp_path):
    r = _snakemake_n(
        root,
        tmp_path,
        "test_sets: [demo_syndof]\nsyndof: {demo_syndof: {sources: [demo_procedural]}}\n"
        "methods: {run: [ref_gradient, zeng], params: {hifst: {pre_sigma: -1}}}\n"
        "training: {data: {zeng: {patches: [demo_syndoff]}}}\n",
    )
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "config key methods.params.hifst.pre_sigma: -1 must be >= 0" in out
    assert "config key training.data.zeng.patches: unknown dataset 'demo_syndoff'" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 2


# --------------------------------------------------------------------------------------
# 2. a local dataset root is fingerprinted
# --------------------------------------------------------------------------------------


def test_folder_fingerprint_sees_every_change(tmp_path):
    import os

    write_image(tmp_path / "gt" / "a.png", np.zeros((8, 8), np.uint8))
    write_image(tmp_path / "image" / "a.png", np.zeros((8, 8, 3), np.uint8))
    fp = folder_fingerprint(tmp_path)
    assert folder_fingerprint(tmp_path) == fp  # stable
    (tmp_path / ".DS_Store").write_bytes(b"x")
    assert folder_fingerprint(tmp_path) == fp  # hidden files do not count
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 255
    write_image(tmp_path / "gt" / "a.png", mask)
    st = (tmp_path / "gt" / "a.png").stat()
    os.utime(tmp_path / "gt" / "a.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fp2 = folder_fingerprint(tmp_path)
    assert fp2 != fp  # an edited mask
    write_image(tmp_path / "image" / "b.png", np.zeros((8, 8, 3), np.uint8))
    assert folder_fingerprint(tmp_path) != fp2  # an added image


# --------------------------------------------------------------------------------------
# 4. GT masks: 0/1, alpha-only, colour; all-one-class datasets fail
# --------------------------------------------------------------------------------------


def test_zero_one_masks_are_scaled(tmp_path):
    m = np.zeros((10, 12), np.uint8)
    m[:, 6:] = 1
    write_image(tmp_path / "m.png", m)
    got = read_gray(tmp_path / "m.png")
    assert set(np.unique(got)) == {0, 255}
    assert (got[:, 6:] == 255).all()
    m16 = m.astype(np.uint16)
    write_image(tmp_path / "m16.png", m16)
    assert read_gray(tmp_path / "m16.png").max() == 65535


def test_alpha_only_masks_are_read_from_alpha(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 3] = 0
    rgba[:, 6:, 3] = 255  # black colour everywhere, the mask in alpha
    _cv2_write(tmp_path / "a.png", rgba)
    got = read_gray(tmp_path / "a.png")
    assert (got[:, 6:] == 255).all() and (got[:, :6] == 0).all()


def test_colour_masks_are_rejected_grey_rgb_masks_accepted(tmp_path):
    grey_rgb = np.zeros((10, 12, 3), np.uint8)
    grey_rgb[:, 6:] = 250
    grey_rgb[0, 6:, 0] = 240  # JPEG-like noise between channels
    _cv2_write(tmp_path / "g.png", grey_rgb)
    assert read_gray(tmp_path / "g.png")[5, 8] == 250
    colour = np.zeros((10, 12, 3), np.uint8)
    colour[:, 6:, 2] = 255  # red = blurred: no declared meaning
    _cv2_write(tmp_path / "c.png", colour)
    with pytest.raises(ImageError, match=r"c\.png is a colour image"):
        read_gray(tmp_path / "c.png")


def _cuhk_copy(folder, photo, mask_value):
    """A CUHK-layout folder with two images whose masks use ``mask_value`` for blurred."""
    for k, name in enumerate(("out_of_focus0037", "out_of_focus0026")):
        write_image(folder / "image" / f"{name}.jpg", photo)
        gt = np.zeros(photo.shape[:2], np.uint8)
        gt[:, 40 + 8 * k :] = mask_value
        write_image(folder / "gt" / f"{name}.png", gt)


def test_zero_one_cuhk_masks_give_the_right_manifest(tmp_path, photo):
    from defocus.datasets.readers import build_manifest

    _cuhk_copy(tmp_path / "cuhk", photo, 1)
    path = build_manifest("cuhk", tmp_path / "cuhk", tmp_path / "out")
    frac = check_gt_classes(path)
    w = photo.shape[1]
    assert frac == pytest.approx(((w - 40) + (w - 48)) / (2 * w))


def test_all_sharp_dataset_fails_its_check_and_defocus_score(tmp_path, photo, capsys):
    rows = []
    for i in range(2):
        write_image(tmp_path / "d" / "image" / f"{i}.png", photo)
        write_image(tmp_path / "d" / "gt" / f"{i}.png", np.zeros(photo.shape[:2], np.uint8))
        write_image(tmp_path / "maps" / f"{i}.png", np.full(photo.shape[:2], 128, np.uint8))
        rows.append({"id": str(i), "split": "test", "image": f"image/{i}.png", "gt": f"gt/{i}.png"})
    man = tmp_path / "d" / "manifest.csv"
    write_manifest(rows, man)
    with pytest.raises(ManifestError, match="entirely sharp"):
        check_gt_classes(man)
    rc = main(["score", "--maps", str(tmp_path / "maps"), "--dataset", "d", "--manifest", str(man)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "entirely sharp" in err and "manifest.csv" in err


# --------------------------------------------------------------------------------------
# 7. one-line messages: corrupt .h5, another method's checkpoint, bad render values
# --------------------------------------------------------------------------------------


def test_truncated_prediction_file_names_the_file_and_can_be_deleted(tmp_path):
    from defocus.io.predictions import (
        PredictionError,
        PredictionWriter,
        iter_maps,
        open_predictions,
    )

    h5 = tmp_path / "p.h5"
    with PredictionWriter(h5, "m", "d") as w:
        w.add("a", np.zeros((20, 20), np.float32), 0.1)
    h5.write_bytes(h5.read_bytes()[:300])
    with pytest.raises(PredictionError, match=r"p\.h5 is truncated or corrupt") as e:
        list(iter_maps(h5, ["a"]))
    assert "\n" not in str(e.value) and "delete it" in str(e.value)
    with pytest.raises(PredictionError, match="deleted it: run snakemake again"):
        with open_predictions(h5, delete_if_corrupt=True):
            pass
    assert not h5.exists()


def test_render_rejects_non_positive_depth_and_unreal_camera(tmp_path, photo, capsys):
    write_image(tmp_path / "im.png", photo)
    depth = np.full(photo.shape[:2], 2.0, np.float32)
    depth[:, 60:] = 0.0
    np.save(tmp_path / "d0.npy", depth)
    np.save(tmp_path / "d.npy", np.full(photo.shape[:2], 2.0, np.float32))
    base = ["render", "--image", str(tmp_path / "im.png"), "--out", str(tmp_path / "out")]
    cases = [
        (["--depth", str(tmp_path / "d0.npy")], "d0.npy has"),
        (["--depth", str(tmp_path / "d.npy"), "--f-number", "1e-9"], "f-number 1e-09"),
        (["--depth", str(tmp_path / "d.npy"), "--focal-length-mm", "0.01"], "focal length 0.01"),
    ]
    for extra, text in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert text in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


#: a small DeFusionNet (random init) whose shape differs from the defaults
_SMALL = {"steps": 1, "side_channels": 8, "vgg_width": 0.125, "pretrained": False, "n_shallow": 2}


@pytest.fixture(scope="module")
def small_defusionnet_ckpt(tmp_path_factory):
    torch = pytest.importorskip("torch")

    from defocus.methods.registry import get_method

    m = get_method("defusionnet", _SMALL)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save(
        {
            "method": "defusionnet",
            "params": m.params,
            "model": m.build(pretrained=False).state_dict(),
        },
        path,
    )
    return path


def test_checkpoint_builds_its_own_network(small_defusionnet_ckpt):
    from defocus.predict import build_method

    m = build_method("defusionnet", {}, small_defusionnet_ckpt, "cpu")
    for k, v in _SMALL.items():
        assert m.params[k] == v
    blur = m.predict(np.zeros((40, 48, 3), np.uint8))
    assert blur.shape == (40, 48)
    with pytest.raises(MethodError, match="other network parameters"):
        build_method("defusionnet", {"steps": 2}, small_defusionnet_ckpt, "cpu")


def test_checkpoint_of_another_method_is_one_line(small_defusionnet_ckpt, tmp_path, photo, capsys):
    write_image(tmp_path / "in" / "p.png", photo)
    args = ["predict", "--method", "dmenet", "--checkpoint", str(small_defusionnet_ckpt)]
    assert main(args + ["--out", str(tmp_path / "o"), str(tmp_path / "in")]) == 2
    err = capsys.readouterr().err.strip()
    assert "belongs to method 'defusionnet', not 'dmenet'" in err and len(err.splitlines()) == 1
    # a state dict without a method name that does not fit: one line, not ~150 key names
    import torch

    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"conv.weight": torch.zeros(3, 3)}}, foreign)
    args = ["predict", "--method", "defusionnet", "--checkpoint", str(foreign)]
    assert (
        main(
            args
            + [
                "--params",
                '{"pretrained": false}',
                "--out",
                str(tmp_path / "o"),
                str(tmp_path / "in"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "does not fit the defusionnet network" in err and len(err.splitlines()) == 1


def test_workflow_predictions_record_the_max_side_policy(tmp_path, photo):
    from defocus.io.predictions import iter_maps, read_attrs
    from defocus.predict import predict_manifest

    write_image(tmp_path / "image" / "big.png", photo)  # 128x96
    write_image(tmp_path / "image" / "small.png", photo[:40, :60])
    rows = [
        {"id": i, "split": "test", "image": f"image/{i}.png", "gt": ""} for i in ("big", "small")
    ]
    write_manifest(rows, tmp_path / "manifest.csv")
    out = predict_manifest(
        "ref_gradient", {}, tmp_path / "manifest.csv", tmp_path / "p.h5", max_side=64
    )
    attrs = read_attrs(out)
    assert attrs["max_side"] == 64 and attrs["resized_ids"] == "big"
    maps = {i: m for i, m, _ in iter_maps(out, ["big", "small"])}
    assert maps["big"].shape == (96, 128) and maps["small"].shape == (40, 60)


def test_a_method_crash_on_one_image_does_not_stop_the_batch(tmp_path, photo, monkeypatch):
    import defocus.predict as pr

    real = pr.run_one

    def flaky(method, image, max_side=0):
        if image.shape[:2] == (40, 60):
            raise RuntimeError("out of memory in a kernel\nlong torch detail")
        return real(method, image, max_side)

    monkeypatch.setattr(pr, "run_one", flaky)
    write_image(tmp_path / "in" / "a.png", photo[:40, :60])
    write_image(tmp_path / "in" / "b.png", photo)
    with pytest.raises(PredictBatchError) as e:
        predict_files("ref_gradient", [tmp_path / "in"], tmp_path / "out")
    assert [p.name for p in e.value.written] == ["b.png"]
    assert "RuntimeError: out of memory in a kernel" in str(e.value)
    assert "long torch detail" not in str(e.value)
