"""The authors' DMENet checkpoint (codeslake/DMENet, TensorLayer ``save_npz_dict``) converted
into this package's network: names, shapes, layouts, and forwards against numpy.

The variable list below is written from the release's ``model.py`` layer by layer (scope,
kernel size, input and output channels, bias, batch norm), independently of the converter,
which walks the PyTorch modules instead.
"""

import numpy as np
import pytest
import torch

from defocus.methods.base import MethodError
from defocus.methods.dmenet import Discriminator, DMENet, DMENetModel
from defocus.methods.dmenet.release import (
    ReleaseCheckpointError,
    expected_variables,
    release_state_dict,
)
from defocus.releases import get_release

#: the release's zip and the checkpoint in it (registry entry ``dmenet``)
RELEASE_ZIP = get_release("dmenet").fname
RELEASE_NPZ = get_release("dmenet").member

ENC = "main_net/defocus_net/encoder/"
DEC = "main_net/defocus_net/decoder/"
BIN = "main_net/binary_net/"
DIS = "discriminator/feature/"


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def model_py_layers(width=1.0):
    """(conv scope, k, c_in, c_out, bias, bn scope or None) of model.py, in its order."""
    c = lambda n: max(1, round(n * width))  # noqa: E731
    out = []
    vgg = [(1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512)]
    c_in = 3
    for block, n, ch in vgg:  # VGG19_down, lines 32-75
        for i in range(1, n + 1):
            out.append((f"{ENC}conv{block}_{i}", 3, c_in, c(ch), True, None))
            c_in = c(ch)

    def aux(scope, cin, mid):  # u*_aux: c1 + b1 (LReLU), c2 to 1 + b2 (sigmoid)
        out.append((f"{DEC}{scope}/c1", 3, cin, c(mid), True, f"{DEC}{scope}/b1"))
        out.append((f"{DEC}{scope}/c2", 3, c(mid), 1, True, f"{DEC}{scope}/b2"))

    aux("u4_aux", c(512), 256)  # lines 117-122
    prev = c(512)
    for scope, skip, ch, mid in [("u3", 512, 256, 128), ("u2", 256, 128, 64), ("u1", 128, 64, 32)]:
        cin = prev + c(skip)  # concat [upsampled, skip]
        for i in range(1, 4):
            out.append((f"{DEC}{scope}/c{i}", 3, cin if i == 1 else c(ch), c(ch), True,
                        f"{DEC}{scope}/b{i}"))  # fmt: skip
        aux(f"{scope}_aux", c(ch), mid)
        prev = c(ch)
    out.append((f"{DEC}u0/c_init", 3, prev + c(64), c(64), True, f"{DEC}u0/b_init"))  # line 188
    aux("u0_aux", c(64), 32)  # lines 192-197
    for i in range(7):  # lines 202-213
        out.append((f"{DEC}u0/c_res{i}", 1, c(64), c(64), True, f"{DEC}u0/b_res{i}"))
        out.append((f"{DEC}u0/c{i}_1", 3, c(64), c(64), True, f"{DEC}u0/b{i}_1"))
        out.append((f"{DEC}u0/c{i}_2", 3, c(64), c(64), True, f"{DEC}u0/b{i}_2"))
    out.append((f"{DEC}uf/c1", 3, c(64), c(64), True, f"{DEC}uf/b1"))  # lines 216-223
    out.append((f"{DEC}uf/c2", 3, c(64), c(32), True, f"{DEC}uf/b2"))
    out.append((f"{DEC}uf/c3", 3, c(32), 1, True, None))
    cin = 1
    for j, ch in enumerate((64, 32, 16), 1):  # Binary_Net, lines 260-281 (default bias)
        for k in range(1, 4):
            out.append((f"{BIN}l{j}/c{k}", 1, cin, c(ch), True, f"{BIN}l{j}/b{k}"))
            cin = c(ch)
    out.append((f"{BIN}l4/c1", 1, cin, 1, True, None))
    cin = c(64)
    for i, ch in enumerate((64, 128, 256, 512)):  # feature_discriminator, b_init=None
        out.append((f"{DIS}h{i}/c1", 4, cin, c(ch), False, f"{DIS}h{i}/b1"))
        cin = c(ch)
    out.append((f"{DIS}h4/c1", 4, cin, 1, False, None))
    return out


def model_py_variables(width=1.0, seed=None, spelling="kernel"):
    """name -> array of a save_npz_dict file of model.py (random values, or zeros with
    unit variances when ``seed`` is None), including the unused training-graph VGG head."""
    rng = np.random.default_rng(seed)
    arr = {}

    def draw(shape, scale=0.2):
        if seed is None:
            return np.zeros(shape, np.float32)
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    kernel, bias = ("kernel", "bias") if spelling == "kernel" else ("W_conv2d", "b_conv2d")
    for scope, k, cin, cout, has_bias, bn in model_py_layers(width):
        arr[f"{scope}/{kernel}:0"] = draw((k, k, cin, cout), np.sqrt(2.0 / (k * k * cin)))
        if has_bias:
            arr[f"{scope}/{bias}:0"] = draw((cout,), 0.1)
        if bn:
            arr[f"{bn}/beta:0"] = draw((cout,), 0.1)
            arr[f"{bn}/moving_mean:0"] = draw((cout,), 0.1)
            var = np.ones(cout, np.float32) if seed is None else rng.uniform(0.5, 1.5, cout)
            arr[f"{bn}/moving_variance:0"] = var.astype(np.float32)
    # training graph only (model.py lines 78-88): conv6_1, the 15x15 c_logits conv, dense
    h = max(1, round(64 * width))
    arr[f"{ENC}conv6_1/{kernel}:0"] = draw((3, 3, max(1, round(512 * width)), h))
    arr[f"{ENC}conv6_1/{bias}:0"] = draw((h,))
    arr[f"{ENC}c_logits_1/{kernel}:0"] = draw((15, 15, h, 512))
    arr[f"{ENC}c_logits_1/W:0"] = draw((512, 512))
    arr[f"{ENC}c_logits_2/W:0"] = draw((512, 1))
    return arr


def _model(width):
    return DMENetModel(width, True, True, None, pretrained=False, vgg_input="caffe")


@pytest.fixture(scope="module")
def release_npz(tmp_path_factory):
    """A full-size DMENet_BDCS.npz of model.py (zeros, unit variances: ~120 MB)."""
    path = tmp_path_factory.mktemp("release") / RELEASE_NPZ
    np.savez(path, **model_py_variables(1.0))
    return path


def test_converter_expects_exactly_model_py_at_full_size():
    m = _model(1.0)
    want = {
        n: a.shape
        for n, a in model_py_variables(1.0).items()
        if "conv6_1" not in n and "c_logits" not in n
    }
    got = expected_variables(m, Discriminator(64, 1.0))
    assert got == want  # every name and every shape, B + S + D
    assert len(got) == 313


def test_full_release_file_converts_and_loads(release_npz, tmp_path):
    from defocus.train.loop import load_checkpoint

    m = DMENet(weights="release")
    ckpt = m.fit({"weights": [str(release_npz)]}, {}, tmp_path)
    state = load_checkpoint(ckpt)
    assert state["config"]["params"]["vgg_input"] == "caffe"
    w = state["model"]["blur.encoder.0.weight"]
    assert w.shape == (64, 3, 3, 3) and float(w.abs().sum()) == 0
    # BN without gamma in the release: scale 1
    assert torch.equal(state["model"]["blur.head.0.1.weight"], torch.ones(64))
    # zero weights: B's map is sigmoid(0) = 1/2 = CoC 7.5, sigma (7.5 - 1) / 2 = 3.25 px
    img = np.random.default_rng(0).integers(0, 256, (20, 35, 3), dtype=np.uint8)
    np.testing.assert_allclose(m.predict_raw(img), 3.25, atol=1e-6)
    # the release's network needs its own parameters
    with pytest.raises(MethodError, match="width"):
        DMENet(weights="release", width=0.5).fit(
            {"weights": [str(release_npz)]}, {}, tmp_path / "x"
        )


def test_training_entry_point_converts_and_the_product_predicts(release_npz, tmp_path):
    import json

    from defocus.predict import build_method
    from defocus.train.__main__ import main

    spec = "dmenet@weights=release"
    # as the workflow's train rule calls it (config/paper.yaml's dmenet params)
    params = {"target": "coc", "vgg_input": "caffe", "vgg_weights": str(tmp_path / "vgg19.npy")}
    args = ["--method", spec, "--params", json.dumps(params), "--data",
            json.dumps({"weights": [str(release_npz)]}), "--workdir", str(tmp_path / "w"),
            "--out", str(tmp_path / "model.pt"), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    m = build_method(spec, {}, tmp_path / "model.pt", "cpu")
    assert m.params["vgg_input"] == "caffe" and m.weights_source() == "authors' release"
    img = np.full((16, 16, 3), 90, np.uint8)
    np.testing.assert_allclose(m.predict_raw(img), 3.25, atol=1e-6)


def test_defocus_predict_runs_the_release_checkpoint(release_npz, tmp_path):
    from defocus.cli import main
    from defocus.io.image import read_gray, write_image

    img = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "photo.png", img)
    args = ["predict", "--method", "dmenet", "--checkpoint", str(release_npz), "--raw"]
    assert main([*args, "--out", str(tmp_path / "out"), str(tmp_path / "in" / "photo.png")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "photo.png" in written, written
    assert read_gray(tmp_path / "out" / "photo.png").shape == (24, 40)
    raw = [p for p in (tmp_path / "out").iterdir() if p.suffix == ".npy"]
    assert raw and np.allclose(np.load(raw[0]), 3.25, atol=1e-6)


def _np_conv(x, k, b, pad):
    """NHWC x (H, W, C), HWIO kernel, 'Symmetric' 1-px pad (pad=True) then VALID conv."""
    if pad:
        x = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="symmetric")
    kh, kw = k.shape[:2]
    h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((h, w, k.shape[3]))
    for dy in range(kh):
        for dx in range(kw):
            out += x[dy : dy + h, dx : dx + w, :] @ k[dy, dx]
    return out + b


def _np_bn(x, arr, scope, act):
    y = (x - arr[f"{scope}/moving_mean:0"]) / np.sqrt(arr[f"{scope}/moving_variance:0"] + 1e-5)
    y = y + arr[f"{scope}/beta:0"]
    return np.where(y > 0, y, 0.2 * y) if act else y


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Random weights of model.py at 1/16 width, converted into a network."""
    arr = model_py_variables(1 / 16, seed=3)
    path = tmp_path_factory.mktemp("small") / "small.npz"
    np.savez(path, **arr)
    model, disc = _model(1 / 16), Discriminator(4, 1 / 16)
    conv = release_state_dict(path, model, disc)
    model.load_state_dict(conv["model"])
    disc.load_state_dict(conv["disc"])
    assert conv["skipped"] == sorted(n[:-2] for n in arr if "conv6_1" in n or "c_logits" in n)
    return arr, model.eval(), disc.eval(), path


def test_first_encoder_block_equals_numpy(small):
    arr, model, _, _ = small
    rng = np.random.default_rng(0)
    rgb = rng.random((32, 48, 3))
    # VGG19_down: rgb * 255, BGR, minus the Caffe mean; pad "Symmetric" + VALID conv, ReLU
    bgr = rgb[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68])
    h = np.maximum(_np_conv(bgr, arr[f"{ENC}conv1_1/kernel:0"], arr[f"{ENC}conv1_1/bias:0"], 1), 0)
    d0 = np.maximum(_np_conv(h, arr[f"{ENC}conv1_2/kernel:0"], arr[f"{ENC}conv1_2/bias:0"], 1), 0)
    x = torch.from_numpy(rgb.transpose(2, 0, 1)[None].copy()).float()
    with torch.no_grad():
        got = model.blur.skips(x)[0][0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, d0, rtol=1e-4, atol=1e-3 * np.abs(d0).max())


def test_head_equals_numpy(small):
    arr, model, _, _ = small
    rng = np.random.default_rng(1)
    n = rng.standard_normal((12, 20, 4))  # the 64-channel (here 4) refined feature, NHWC
    h = _np_bn(_np_conv(n, arr[f"{DEC}uf/c1/kernel:0"], arr[f"{DEC}uf/c1/bias:0"], 1), arr,
               f"{DEC}uf/b1", True)  # fmt: skip
    h = _np_bn(_np_conv(h, arr[f"{DEC}uf/c2/kernel:0"], arr[f"{DEC}uf/c2/bias:0"], 1), arr,
               f"{DEC}uf/b2", True)  # fmt: skip
    h = _np_conv(h, arr[f"{DEC}uf/c3/kernel:0"], arr[f"{DEC}uf/c3/bias:0"], 1)
    want = 1 / (1 + np.exp(-h[..., 0]))
    x = torch.from_numpy(n.transpose(2, 0, 1)[None].copy()).float()
    with torch.no_grad():
        got = torch.sigmoid(model.blur.head(x))[0, 0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_residual_block_and_discriminator_equal_numpy(small):
    arr, model, disc, _ = small
    rng = np.random.default_rng(2)
    n = rng.standard_normal((8, 12, 4))
    i = 3
    res = _np_bn(_np_conv(n, arr[f"{DEC}u0/c_res{i}/kernel:0"], arr[f"{DEC}u0/c_res{i}/bias:0"],
                          0), arr, f"{DEC}u0/b_res{i}", True)  # fmt: skip
    h = _np_bn(_np_conv(n, arr[f"{DEC}u0/c{i}_1/kernel:0"], arr[f"{DEC}u0/c{i}_1/bias:0"], 1),
               arr, f"{DEC}u0/b{i}_1", True)  # fmt: skip
    h = _np_bn(_np_conv(h, arr[f"{DEC}u0/c{i}_2/kernel:0"], arr[f"{DEC}u0/c{i}_2/bias:0"], 1),
               arr, f"{DEC}u0/b{i}_2", True)  # fmt: skip
    x = torch.from_numpy(n.transpose(2, 0, 1)[None].copy()).float()
    with torch.no_grad():
        got = model.blur.refine[i](x)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, h + res, rtol=1e-4, atol=1e-5)
    # discriminator h0: 4x4 stride 2 "SAME" (8 -> 4: total pad 2, 1 each side), no bias
    k = arr[f"{DIS}h0/c1/kernel:0"]
    xp = np.pad(n, ((1, 1), (1, 1), (0, 0)))
    full = _np_conv(xp, k, 0.0, 0)[::2, ::2]
    want = _np_bn(full, arr, f"{DIS}h0/b1", True)
    with torch.no_grad():
        from defocus.methods.dmenet.layers import _pad_same

        got = disc.layers[0](_pad_same(x, 4, 2))[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_old_tensorlayer_spelling_and_files_without_s_or_d(tmp_path):
    arr = model_py_variables(1 / 16, seed=4, spelling="W_conv2d")
    a = {k: v for k, v in arr.items() if not k.startswith((BIN, DIS))}
    np.savez(tmp_path / "b.npz", **a)
    conv = release_state_dict(tmp_path / "b.npz", _model(1 / 16), Discriminator(4, 1 / 16))
    assert conv["disc"] is None
    k = arr[f"{DEC}uf/c3/W_conv2d:0"]
    assert torch.equal(
        conv["model"]["blur.head.2.weight"], torch.from_numpy(k.transpose(3, 2, 0, 1))
    )


@pytest.mark.parametrize("edit", ["missing", "leftover", "shape", "half_s"])
def test_every_problem_is_named(tmp_path, edit):
    arr = model_py_variables(1 / 16, seed=5)
    if edit == "missing":
        del arr[f"{DEC}u2/b3/moving_mean:0"], arr[f"{ENC}conv5_4/kernel:0"]
        names = [f"{DEC}u2/b3/moving_mean", f"{ENC}conv5_4/kernel"]
    elif edit == "leftover":
        arr[f"{DEC}u9/c1/kernel:0"] = np.zeros((3, 3, 1, 1), np.float32)
        arr["main_net/extra:0"] = np.zeros(2, np.float32)
        names = [f"{DEC}u9/c1/kernel", "main_net/extra"]
    elif edit == "shape":
        arr[f"{DEC}u3/c1/kernel:0"] = np.zeros((3, 3, 5, 16), np.float32)
        names = [f"{DEC}u3/c1/kernel: file (3, 3, 5, 16)"]
    else:
        del arr[f"{BIN}l2/c2/kernel:0"]
        names = [f"{BIN}l2/c2/kernel", "Binary_Net"]
    np.savez(tmp_path / "bad.npz", **arr)
    with pytest.raises(ReleaseCheckpointError) as e:
        release_state_dict(tmp_path / "bad.npz", _model(1 / 16), Discriminator(4, 1 / 16))
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in names), msg


def test_release_zip_download_is_verified_and_unpacked(tmp_path, serve_dir):
    import hashlib
    import zipfile

    from defocus.datasets.download import DownloadError
    from defocus.releases import fetch

    site = tmp_path / "site"
    site.mkdir()
    np.savez(tmp_path / RELEASE_NPZ, **{f"{DEC}uf/c3/kernel:0": np.ones((3, 3, 2, 1), np.float32)})
    with zipfile.ZipFile(site / RELEASE_ZIP, "w") as zf:  # the README's unzip layout
        zf.write(tmp_path / RELEASE_NPZ, f"DMENet_BDCS/checkpoint/{RELEASE_NPZ}")
    digest = hashlib.sha256((site / RELEASE_ZIP).read_bytes()).hexdigest()
    base = serve_dir(site)
    out = tmp_path / "weights" / "release.npz"
    got = fetch("dmenet", out, {"base_url": base, "sha256": {RELEASE_ZIP: digest}}, False)
    assert got == out and np.load(out)[f"{DEC}uf/c3/kernel:0"].shape == (3, 3, 2, 1)
    # a wrong pin: nothing written, the message says where to put the file by hand
    bad = {"base_url": base, "sha256": {RELEASE_ZIP: "0" * 64}}
    with pytest.raises(DownloadError, match="put DMENet_BDCS.zip.*methods.params.dmenet.weights"):
        fetch("dmenet", tmp_path / "w2" / "release.npz", bad, False)
    assert not (tmp_path / "w2" / "release.npz").exists()
    # a zip without the checkpoint
    with zipfile.ZipFile(site / RELEASE_ZIP, "w") as zf:
        zf.writestr("readme.txt", "no weights here")
    with pytest.raises(DownloadError, match="expected one DMENet_BDCS.npz"):
        fetch("dmenet", tmp_path / "w3" / "release.npz", {"base_url": base}, False)


def _vgg19_npy(path, width, seed=0):
    """A vgg19.npy of machrisaa/tensorflow-vgg's form: {layer: [W (HWIO), b]}, fc layers too."""
    rng = np.random.default_rng(seed)
    c = lambda n: max(1, round(n * width))  # noqa: E731
    data, c_in = {}, 3
    for block, n, ch in [(1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512)]:
        for i in range(1, n + 1):
            w = rng.standard_normal((3, 3, c_in, c(ch))).astype(np.float32) * 0.1
            data[f"conv{block}_{i}"] = [w, rng.standard_normal(c(ch)).astype(np.float32)]
            c_in = c(ch)
    data["fc6"] = [np.zeros((4, 2), np.float32), np.zeros(2, np.float32)]  # not loaded
    np.save(path, np.array(data, dtype=object), allow_pickle=True)
    return data


def test_caffe_vgg19_npy_initialises_the_encoder(tmp_path):
    from defocus.methods.backbones import vgg_features
    from defocus.methods.dmenet import BlurNet
    from defocus.methods.dmenet.release import vgg19_npy_state_dict

    data = _vgg19_npy(tmp_path / "small.npy", 1 / 16)
    feats = vgg_features("vgg19", None, False, 1 / 16)
    feats.load_state_dict(vgg19_npy_state_dict(tmp_path / "small.npy", feats))
    convs = [m for m in feats if isinstance(m, torch.nn.Conv2d)]
    w = data["conv3_2"][0]
    assert torch.equal(convs[5].weight, torch.from_numpy(w.transpose(3, 2, 0, 1)))
    assert torch.equal(convs[15].bias, torch.from_numpy(data["conv5_4"][1]))
    # the full file initialises B's encoder (and C's) as the release's main.py does
    full = _vgg19_npy(tmp_path / "vgg19.npy", 1.0, seed=1)
    net = BlurNet(1.0, aux=False, vgg_weights=str(tmp_path / "vgg19.npy"), vgg_input="caffe")
    assert torch.equal(
        net.encoder[0].weight, torch.from_numpy(full["conv1_1"][0].transpose(3, 2, 0, 1))
    )
    assert net.encoder.init.endswith("vgg19.npy")
    with pytest.raises(ValueError, match="vgg_input: caffe"):
        DMENet(vgg_weights=str(tmp_path / "vgg19.npy"))
    del data["conv4_2"]
    np.save(tmp_path / "bad.npy", np.array(data, dtype=object), allow_pickle=True)
    with pytest.raises(ReleaseCheckpointError, match="conv4_2"):
        vgg19_npy_state_dict(tmp_path / "bad.npy", feats)


@pytest.mark.slow
def test_workflow_fetches_converts_and_scores_the_release(root, tmp_path, serve_dir):
    """dmenet@weights=release through Snakemake: verified download (a local mirror pinned by
    its digest), conversion, prediction and scoring on the release's CUHK and RTF parts."""
    import hashlib
    import subprocess
    import sys
    import zipfile

    import pandas as pd
    import yaml

    from defocus.io.image import write_image

    site = tmp_path / "site"
    site.mkdir()
    np.savez(tmp_path / RELEASE_NPZ, **model_py_variables(1.0))
    with zipfile.ZipFile(site / RELEASE_ZIP, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tmp_path / RELEASE_NPZ, f"DMENet_BDCS/checkpoint/{RELEASE_NPZ}")
    digest = hashlib.sha256((site / RELEASE_ZIP).read_bytes()).hexdigest()
    data = tmp_path / "datasets"
    rng = np.random.default_rng(0)
    mask = np.zeros((48, 64), np.uint8)
    mask[:, 32:] = 255
    for split, n in (("train", 1), ("test", 2)):
        for i in range(n):
            write_image(
                data / f"{split}/CUHK/image/{i}.jpg",
                rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            )
            write_image(data / f"{split}/CUHK/gt/{i}.png", mask)
    for i in range(2):
        write_image(data / f"test/RTF/image/0/{i}.png", rng.integers(0, 256, (48, 64, 3), np.uint8))
        (data / "test/RTF/gt/0").mkdir(parents=True, exist_ok=True)
        sigma = np.full((48, 64), 0.2)
        sigma[:, 32:] = 1.0 + i  # right half blurred
        np.save(data / f"test/RTF/gt/0/{i}.npy", sigma)
    cfg = {
        "device": "cpu",
        "datasets": {"dmenet_release": {"root": str(data)}},
        "releases": {"dmenet": {"base_url": serve_dir(site), "sha256": {RELEASE_ZIP: digest}}},
        "syndof": {},
        "test_sets": ["dmenet_release_cuhk", "dmenet_release_rtf"],
        "methods": {"run": ["ref_gradient", "dmenet@weights=release"]},
        "evaluation": {"bootstrap": 20, "qualitative_images": 1, "tabulate": []},
        "external_methods": {},
    }
    cfgfile = tmp_path / "release.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--cores",
         "2", f"--configfile={cfgfile}", "results/tables/table1.csv"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "fetch_weights_dmenet" in out and "fetch_dataset" not in out
    t = pd.read_csv(tmp_path / "results" / "tables" / "table1.csv")
    rows = t[t["method"] == "dmenet@weights=release"]
    assert set(rows["dataset"]) == {"dmenet_release_cuhk", "dmenet_release_rtf"}
    # zero weights: sigma 3.25 px everywhere, clipped at 3.275 and scaled as the release's
    # RTF code: |3.25 - sigma_gt| / 3.275, GT 0.2 on the left half, 1 or 2 on the right
    import json

    summary = json.loads(
        (
            tmp_path / "results/metrics/dmenet@weights=release/dmenet_release_rtf.summary.json"
        ).read_text()
    )
    want = np.mean([(3.05 + abs(3.25 - right)) / 2 for right in (1.0, 2.0)]) / 3.275
    assert summary["defocus_mae"] == pytest.approx(want, rel=1e-4)
