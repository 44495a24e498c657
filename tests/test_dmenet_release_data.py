"""The DMENet authors' data (datasets.zip of codeslake/DMENet) read from files these tests write
in the released layout (config.py lines 35-57), its label decoding (utils.py, main.py), the
unlabelled photo folder, DMENet trained on the parts, and the workflow's plan for them."""

import subprocess
import sys

import numpy as np
import pytest
import yaml

from defocus.datasets.dmenet_release import coc_to_sigma, read_blur_map
from defocus.datasets.readers import DatasetLayoutError, build_manifest
from defocus.io.image import read_gray, write_image
from defocus.io.manifest import read_manifest

H, W = 32, 48
#: CoC per quarter of a SYNDOF blur map: 0, 1, 3 and 15 px -> sigma 0, 0, 1, 7
COCS = (0.0, 1.0, 3.0, 15.0)


def _photo(rng):
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _coc_map():
    coc = np.zeros((H, W), np.float32)
    for i, c in enumerate(COCS):
        coc[:, i * W // 4 : (i + 1) * W // 4] = c
    return coc


@pytest.fixture(scope="module")
def release_root(tmp_path_factory):
    """A tiny datasets.zip tree: 3 SYNDOF train, 2 SYNDOF test, 3 + 2 CUHK, 2 Flickr, RTF x3."""
    root = tmp_path_factory.mktemp("dmenet_data") / "datasets"
    rng = np.random.default_rng(0)
    coc = _coc_map()
    for i in range(3):
        write_image(root / f"train/SYNDOF/image/{i:04d}.png", _photo(rng))
        bm = np.zeros((H, W, 3), np.uint8)  # channel 1 = CoC * 10 (utils.py line 38)
        bm[..., 1] = np.round(coc * 10).astype(np.uint8)
        bm[..., 0] = 77  # the other channels carry nothing the release reads
        write_image(root / f"train/SYNDOF/blur_map/{i:04d}.png", bm[..., ::-1])  # as BGR file
    for i in range(2):
        write_image(root / f"test/SYNDOF/image/{i:04d}.png", _photo(rng))
        write_image(root / f"test/SYNDOF/gt/{i:04d}.png", np.round(coc / 15 * 255).astype(np.uint8))
    mask = np.zeros((H, W), np.uint8)
    mask[:, W // 2 :] = 255  # white = blurred, right half
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            write_image(root / f"{split}/CUHK/image/img{i}.jpg", _photo(rng))
            write_image(root / f"{split}/CUHK/gt/img{i}.png", mask)
    for i in range(2):
        write_image(root / f"train/Flickr/flickr_{i}.jpg", _photo(rng))
    for noise in ("0", "1", "1.6"):
        for i in range(2):
            write_image(root / f"test/RTF/image/{noise}/{i:02d}.png", _photo(rng))
            (root / f"test/RTF/gt/{noise}").mkdir(parents=True, exist_ok=True)
            np.save(root / f"test/RTF/gt/{noise}/{i:02d}.npy", np.full((H, W), 0.25 * (i + 1)))
    return root


def test_label_decoding_follows_the_release(release_root):
    coc = read_blur_map(release_root / "train/SYNDOF/blur_map/0000.png")
    np.testing.assert_allclose(coc, _coc_map())
    # main.py line 500: (CoC - 1) / 2, negatives set to 0
    np.testing.assert_allclose(coc_to_sigma(np.array(COCS)), [0.0, 0.0, 1.0, 7.0])


def test_syndof_part(release_root, tmp_path):
    m = read_manifest(build_manifest("dmenet_release_syndof", release_root, tmp_path))
    assert sorted(m["split"]) == ["test"] * 2 + ["train"] * 3
    for _, row in m.iterrows():
        np.testing.assert_allclose(np.load(row["coc"]), _coc_map(), atol=0.5 / 255 * 15)
        want = coc_to_sigma(np.load(row["coc"]))
        np.testing.assert_allclose(np.load(row["defocus"]), want)
        # binary GT for binary metrics: sigma > 0.5 px (CoC 3 and 15 quarters)
        assert read_gray(row["gt"]).mean() == pytest.approx(255 / 2)


def test_cuhk_part_is_the_release_split(release_root, tmp_path):
    m = read_manifest(build_manifest("dmenet_release_cuhk", release_root, tmp_path))
    assert (m["split"] == "train").sum() == 3 and (m["split"] == "test").sum() == 2
    g = read_gray(m["gt"][0])
    assert g[:, : W // 2].max() == 0 and g[:, W // 2 :].min() == 255  # 255 = blurred kept


def test_flickr_and_photo_folders_have_no_gt(release_root, tmp_path):
    m = read_manifest(build_manifest("dmenet_release_flickr", release_root, tmp_path / "f"))
    assert list(m["id"]) == ["flickr_0", "flickr_1"] and set(m["gt"]) == {""}
    assert set(m["split"]) == {"train"}
    p = read_manifest(build_manifest("photos", release_root / "train", tmp_path / "p"))
    # every image under the folder, recursively (SYNDOF images and maps, CUHK images and
    # masks, Flickr); no GT; repeated stems get their relative path as id
    assert len(p) == 3 + 3 + 3 + 3 + 2 and set(p["gt"]) == {""} and p["id"].is_unique
    assert "SYNDOF_image_0000" in set(p["id"]) and "flickr_0" in set(p["id"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match="no images"):
        build_manifest("photos", empty, tmp_path / "q")


@pytest.mark.parametrize("name, noise", [("rtf", "0"), ("rtf1", "1"), ("rtf1_6", "1.6")])
def test_rtf_parts_per_noise_level(release_root, tmp_path, name, noise):
    m = read_manifest(build_manifest(f"dmenet_release_{name}", release_root, tmp_path))
    assert set(m["split"]) == {"test"} and len(m) == 2
    assert all(f"/{noise}/" in p for p in m["image"])
    np.testing.assert_allclose(np.load(m["defocus"][1]), 0.5)  # the .npy sigma, px


def test_whole_release_listing_and_layout_errors(release_root, tmp_path):
    m = read_manifest(build_manifest("dmenet_release", release_root.parent, tmp_path / "a"))
    assert len(m) == 5 + 5 + 2 + 6 and m["id"].is_unique
    assert {i.split("_")[0] for i in m["id"]} == {"syndof", "cuhk", "flickr", "rtf0", "rtf1"}
    broken = tmp_path / "broken"
    write_image(broken / "train/SYNDOF/image/a.png", np.zeros((H, W, 3), np.uint8))
    (broken / "train/SYNDOF/blur_map").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="1 images .* but 0 labels"):
        build_manifest("dmenet_release_syndof", broken, tmp_path / "b")
    with pytest.raises(DatasetLayoutError, match="train/CUHK/image"):
        build_manifest("dmenet_release_cuhk", broken, tmp_path / "c")


def test_dmenet_trains_on_the_release_parts_with_coc_targets(release_root, tmp_path):
    import torch

    from defocus.methods.dmenet import DMENet
    from defocus.methods.dmenet.data import _load_role, _read

    syn = build_manifest("dmenet_release_syndof", release_root, tmp_path / "s")
    cuhk = build_manifest("dmenet_release_cuhk", release_root, tmp_path / "c")
    flickr = build_manifest("dmenet_release_flickr", release_root, tmp_path / "f")
    rows = _load_role("synthetic", [syn], "coc")
    assert len(rows) == 3  # the train split only
    _, label = _read(rows[0], "synthetic", 7.0, "coc", 15.0)
    np.testing.assert_allclose(label, _coc_map() / 15.0, atol=1e-6)  # utils.py line 43
    with pytest.raises(ValueError, match="'coc'"):
        _load_role("synthetic", [cuhk], "coc")
    torch.set_num_threads(1)
    m = DMENet(width=1 / 16, pretrained=False, batch_size=2, crop=32, iterations=2,
               target="coc", vgg_input="caffe")  # fmt: skip
    # the release's role names: real_no_label (Flickr) is DMENet's unlabelled real role
    roles = {"synthetic": [syn], "real_no_label": [flickr], "binary": [cuhk]}
    ckpt = m.fit(roles, {"seed": 0}, tmp_path)
    assert ckpt.is_file()
    assert m.predict_raw(np.zeros((H, W, 3), np.uint8)).shape == (H, W)


def test_paper_dag_plans_the_release_model_and_data(root, release_root, tmp_path):
    cfg = yaml.safe_load((root / "config" / "paper.yaml").read_text())
    rtf = tmp_path / "rtf"
    rtf.mkdir()
    cfg["datasets"] = {
        "dmenet_release": {"root": str(release_root)},
        "rtf": {"root": str(rtf), "conversion": "release", "noise_level": "1"},
    }
    cfg["methods"]["run"] = ["ref_gradient", "dmenet", "dmenet@weights=release"]
    cfg["test_sets"] = ["dmenet_release_cuhk", "dmenet_release_syndof", "dmenet_release_rtf"]
    cfg["syndof"] = {}
    path = tmp_path / "paper_release.yaml"
    path.write_text(yaml.safe_dump(cfg))
    targets = [
        "results/models/dmenet@weights=release/model.pt",
        "results/models/dmenet/model.pt",
        "results/data/dmenet_release_rtf/manifest.csv",
        "results/data/rtf/manifest.csv",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-F", "--configfile", str(path), "-d",
         str(tmp_path / "wd"), "-s", str(root / "Snakefile"), *targets],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "fetch_weights_dmenet" in out and "registry_manifest" in out
    assert "fetch_vgg19" in out  # the authors' Caffe VGG19 starts the training
    assert "fetch_rtf_conversion" in out  # RTF's GT to sigma with DMENet's table
    # the parts read the user's copy: nothing of the release data is downloaded
    assert "fetch_dataset" not in out and "render_syndof" not in out


@pytest.mark.filterwarnings("ignore:GT mask")  # a uniform GT: one class
def test_rtf_config_keys_reach_the_reader(tmp_path, serve_dir):
    """datasets.rtf.{conversion, image_root, noise_level} (config) -> the rtf reader; the
    released conversion table is a verified download."""
    import hashlib

    from scipy.io import savemat

    from defocus.datasets import dmenet_release as rel

    root, images = tmp_path / "RTF", tmp_path / "inputs"
    for noise, value in (("0", 1.0), ("1", 5.75)):
        (root / "gt" / noise).mkdir(parents=True)
        savemat(root / "gt" / noise / "im01.mat", {"blurMap": np.full((H, W), value)})
    write_image(images / "im01.png", np.zeros((H, W, 3), np.uint8))
    site = tmp_path / "site"
    site.mkdir()
    table = np.array([[0.3, 0.5], [0.65, 1.0], [3.15, 5.75], [3.275, 6.0]])  # [sigma, RTF]
    savemat(site / rel.RTF_CONVERSION_FNAME, {"convertion": table})
    digest = hashlib.sha256((site / rel.RTF_CONVERSION_FNAME).read_bytes()).hexdigest()
    base = serve_dir(site)
    # a mirror (config releases.rtf_conversion) serving another build, pinned by its digest
    mirror = {"base_url": base, "sha256": {rel.RTF_CONVERSION_FNAME: digest}}
    conv = rel.fetch_rtf_conversion(tmp_path / "res" / "convertion.mat", mirror, False)
    entry = {"conversion": str(conv), "image_root": str(images), "noise_level": "1"}
    m = read_manifest(build_manifest("rtf", root, tmp_path / "out", entry))
    np.testing.assert_allclose(np.load(m["defocus"][0]), 3.15)  # gt/1, converted to sigma
    from defocus.datasets.download import DownloadError

    # without a pin of the mirror's file, the code's pin (the authors' file) refuses it
    with pytest.raises(DownloadError, match="convertion.mat"):
        rel.fetch_rtf_conversion(tmp_path / "res2" / "convertion.mat", {"base_url": base}, False)
    assert not (tmp_path / "res2" / "convertion.mat").exists()
