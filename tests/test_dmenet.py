"""DMENet (Lee et al. CVPR'19): subnetworks, ablation switches, training, resume, inference.

Every network here is the published one shrunk by ``width`` (1/16 of the channels) and randomly
initialised (no ImageNet weights offline); images are 32-48 px. Torch runs on one thread:
these graphs are many small ops, for which one thread is several times faster than two.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from defocus.methods.base import MethodError
from defocus.methods.dmenet import (
    AUX,
    BlurNet,
    CalibrationNet,
    ContentNet,
    Discriminator,
    DMENet,
    Trainer,
    augment,
    resize_nearest_tf,
)
from defocus.methods.registry import get_method

W = 1 / 16  # channel multiplier of every test network
TINY = {"width": W, "pretrained": False, "batch_size": 2, "crop": 32, "ckpt_every": 1000}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "synthetic": torch.rand(n, 3, size, size, generator=g),
        "synthetic_gt": torch.rand(n, 1, size, size, generator=g),
        "real": torch.rand(n, 3, size, size, generator=g),
        "binary": torch.rand(n, 3, size, size, generator=g),
        "binary_gt": (torch.rand(n, 1, size, size, generator=g) > 0.5).float(),
    }


# -- building blocks -------------------------------------------------------------------------
def test_resize_nearest_matches_tf_align_corners():
    # TF1 resize_nearest_neighbor(align_corners=True): src = roundf(i * (n_in-1)/(n_out-1)).
    # Hand-computed for 4 -> 8: i * 3/7 = 0, .43, .86, 1.29, 1.71, 2.14, 2.57, 3 -> rounded:
    x = torch.arange(4.0).view(1, 1, 1, 4)
    assert resize_nearest_tf(x, (1, 8)).flatten().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # 5 -> 8: i * 4/7 = 0, .57, 1.14, 1.71, 2.29, 2.86, 3.43, 4
    x = torch.arange(5.0).view(1, 1, 5, 1)
    assert resize_nearest_tf(x, (8, 1)).flatten().tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
    # 240 -> 15 (the 1/16 aux target of a 240 crop): i * 239/14, e.g. i = 1 -> 17.07 -> 17
    x = torch.arange(240.0).view(1, 1, 1, 240)
    got = resize_nearest_tf(x, (1, 15)).flatten().tolist()
    assert got == [float(np.floor(i * 239 / 14 + 0.5)) for i in range(15)] and got[1] == 17


def test_blur_net_shapes_aux_and_gradients():
    torch.manual_seed(0)
    net = BlurNet(width=W, aux=True, pretrained=False)
    x = torch.rand(2, 3, 48, 32, requires_grad=True)
    out = net(x)
    assert out["map"].shape == (2, 1, 48, 32)
    assert 0 <= float(out["map"].detach().min()) and float(out["map"].detach().max()) <= 1
    # five aux maps at 1/16, 1/8, 1/4, 1/2, 1/1 (release u4_aux .. u0_aux)
    assert [tuple(a.shape[-2:]) for a in out["aux"]] == [
        (3, 2),
        (6, 4),
        (12, 8),
        (24, 16),
        (48, 32),
    ]
    assert len(net.aux) == len(AUX)
    assert out["feat"].shape == (2, net.feat_channels, 48, 32)
    (out["map"].mean() + sum(a.mean() for a in out["aux"])).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    # without aux: no heads, no aux maps; odd sizes are refused
    plain = BlurNet(width=W, aux=False, pretrained=False)
    assert plain.aux is None and plain(torch.rand(2, 3, 32, 32))["aux"] == []
    with pytest.raises(ValueError, match="multiples of 16"):
        plain(torch.rand(1, 3, 33, 32))


def test_discriminator_same_padding_and_gradients():
    torch.manual_seed(0)
    d = Discriminator(in_channels=4, width=W)
    # TF 'SAME' with stride 2 gives ceil(n / 2) per layer: 48 -> 24 -> 12 -> 6 -> 3 -> 2
    f = torch.rand(2, 4, 48, 40, requires_grad=True)
    logits = d(f)
    assert logits.shape == (2, 1, 2, 2)
    assert all(m.bias is None for m in d.modules() if isinstance(m, torch.nn.Conv2d))
    logits.mean().backward()
    assert all(p.grad is not None for p in d.parameters())
    assert float(f.grad.abs().sum()) > 0


def test_content_net_is_frozen_but_passes_gradients():
    torch.manual_seed(0)
    c = ContentNet(width=W, pretrained=False)
    c.train()  # stays in eval mode: frozen statistics and weights
    assert not c.training and not any(p.requires_grad for p in c.parameters())
    m = torch.rand(2, 1, 32, 32, requires_grad=True)
    feat = c(m)
    assert feat.shape == (2, round(512 * W), 4, 4)  # conv4_4: 1/8 of the input
    torch.nn.functional.mse_loss(feat, c(torch.rand(2, 1, 32, 32))).backward()
    assert all(p.grad is None for p in c.parameters())
    assert m.grad is not None and float(m.grad.abs().sum()) > 0


def test_calibration_net_is_per_pixel():
    """1x1 convs only (release Binary_Net): permuting pixels permutes the logits."""
    torch.manual_seed(0)
    s = CalibrationNet(width=W).eval()
    m = torch.rand(1, 1, 8, 8, requires_grad=True)
    perm = torch.randperm(64)
    a = s(m).flatten()[perm]
    b = s(m.flatten()[perm].view(1, 1, 8, 8)).flatten()
    assert torch.allclose(a, b, atol=1e-6)
    s.train()
    s(m).mean().backward()
    assert all(p.grad is not None for p in s.parameters()) and m.grad is not None


# -- ablation switches ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "subnets, aux, keys",
    [
        ("B", True, {"loss", "blur", "aux"}),
        ("BD", True, {"loss", "blur", "aux", "adv", "disc"}),
        ("BDC", True, {"loss", "blur", "aux", "adv", "disc", "content"}),
        ("BDCS", True, {"loss", "blur", "aux", "adv", "disc", "content", "calib"}),
        ("BDCS", False, {"loss", "blur", "adv", "disc", "content", "calib"}),
    ],
)
def test_each_switch_removes_exactly_its_losses(subnets, aux, keys):
    torch.manual_seed(0)
    m = DMENet(**TINY, subnets=subnets, aux=aux)
    tr = Trainer(m.params)
    assert (tr.disc is not None) == ("D" in subnets)
    assert (tr.content is not None) == ("C" in subnets)
    assert (tr.model.calib is not None) == ("S" in subnets)
    assert (tr.model.blur.aux is not None) == aux
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    d_before = None if tr.disc is None else [p.clone() for p in tr.disc.parameters()]
    c_before = None if tr.content is None else [p.clone() for p in tr.content.parameters()]
    logs = tr.step(tr.model, _batch())
    assert set(logs) == keys
    assert all(np.isfinite(v) for v in logs.values())
    # B always learns; D only through L_d (it is its own optimiser's); C never
    after = tr.model.state_dict()
    assert not torch.equal(before["blur.head.2.weight"], after["blur.head.2.weight"])
    if tr.model.calib is not None:
        assert not torch.equal(before["calib.body.9.weight"], after["calib.body.9.weight"])
    if d_before is not None:
        d_after = list(tr.disc.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(d_before, d_after, strict=True))
        # restored after the G step (BN scales stay frozen: bn_scale false, as the release)
        convs = [m for m in tr.disc.modules() if isinstance(m, torch.nn.Conv2d)]
        assert all(m.weight.requires_grad for m in convs)
    if c_before is not None:
        c_after = list(tr.content.parameters())
        assert all(torch.equal(a, b) for a, b in zip(c_before, c_after, strict=True))
    # the optimiser of B/S holds no D or C parameter
    g_params = {id(p) for grp in tr.opt_g.param_groups for p in grp["params"]}
    for other in (tr.disc, tr.content):
        if other is not None:
            assert not g_params & {id(p) for p in other.parameters()}


def test_generator_step_does_not_move_d_and_d_step_does_not_move_b():
    """L_g gives D no gradient (D frozen during the G update); L_d reaches B not at all."""
    torch.manual_seed(0)
    tr = Trainer(DMENet(**TINY, subnets="BD").params)
    out = tr.model(_batch()["synthetic"], _batch()["real"])
    tr.discriminator_loss(out).backward()
    assert all(p.grad is None for p in tr.model.parameters())
    # every trained parameter of D (its BN scales are held at 1, as the release's)
    assert all(p.grad is not None for p in tr.disc.parameters() if p.requires_grad)
    assert sum(p.requires_grad for p in tr.disc.parameters()) == 5 + 4  # 5 convs, 4 BN shifts


def test_ablation_names_and_validation():
    assert get_method("dmenet@subnets=B").params["subnets"] == "B"
    assert get_method("dmenet@subnets=bdc").params["subnets"] == "BDC"
    m = get_method("dmenet@aux=false")
    assert m.params["aux"] is False and m.params["subnets"] == "BDCS"
    assert m.has_raw and m.raw_unit == "px" and m.learned
    for bad in ("DC", "BX", "BB", ""):
        with pytest.raises(ValueError, match="subnets"):
            DMENet(subnets=bad)
    with pytest.raises(ValueError, match="multiple of 16"):
        DMENet(crop=250)
    with pytest.raises(ValueError, match="unknown parameter"):
        DMENet(lambda_d=1.0)


def test_augment_moves_label_with_image():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    for seed in range(6):
        im, lab = augment(img, img[..., 1].astype(np.float32), np.random.default_rng(seed), 32, 800)
        assert im.shape == (32, 32, 3) and lab.shape == (32, 32)
        assert np.array_equal(im[..., 1].astype(np.float32), lab)
    # a short side <= crop is resized up to crop + 1 (release), so any crop fits
    im, lab = augment(img[:20, :30], None, rng, 32, 800)
    assert im.shape == (32, 32, 3) and lab is None


# -- training on tiny SYNDOF-like data ----------------------------------------------------------
@pytest.fixture(scope="module")
def syndof(tmp_path_factory):
    """Three 48x48 photos, right half Gaussian-blurred with sigma 1.5 / 2.5 / 3.5 px.

    Manifest like the SYNDOF builder's: image, binary gt (255 = blurred), defocus (sigma npy).
    """
    import cv2
    from skimage import data

    from defocus.io.image import write_image
    from defocus.io.manifest import write_manifest

    root = tmp_path_factory.mktemp("syndof")
    rows = []
    for i, (name, s) in enumerate([("astronaut", 1.5), ("chelsea", 2.5), ("coffee", 3.5)]):
        photo = cv2.resize(getattr(data, name)(), (48, 48), interpolation=cv2.INTER_AREA)
        img = photo.copy()
        img[:, 24:] = cv2.GaussianBlur(photo, (0, 0), s)[:, 24:]
        sigma = np.zeros((48, 48), np.float32)
        sigma[:, 24:] = s
        write_image(root / "image" / f"{i}.png", img)
        write_image(root / "gt" / f"{i}.png", (sigma > 0).astype(np.uint8) * 255)
        (root / "defocus").mkdir(exist_ok=True)
        np.save(root / "defocus" / f"{i}.npy", sigma)
        rows.append(
            {
                "id": f"s{i}",
                "split": "train",
                "image": root / "image" / f"{i}.png",
                "gt": root / "gt" / f"{i}.png",
                "defocus": root / "defocus" / f"{i}.npy",
            }
        )
    manifest = root / "manifest.csv"
    write_manifest(rows, manifest)
    return manifest


def _roles(manifest):
    return {"synthetic": [manifest], "real": [manifest], "binary": [manifest]}


def test_overfit_tiny_syndof(syndof, tmp_path):
    """B alone on three images: the blur-map MSE falls by a large factor on the CPU.

    Measured (seed 0, lr 3e-3): mean MSE of the first 10 iterations 0.145, of the last 10
    0.009 (16x); the test asks for 6x.
    """
    m = DMENet(**{**TINY, "crop": 48}, subnets="B", lr=3e-3, iterations=150)
    m.fit({"synthetic": [syndof]}, {"seed": 0, "device": "cpu"}, tmp_path)
    loss = pd.read_csv(tmp_path / "loss.csv")
    first, last = loss["blur"].head(10).mean(), loss["blur"].tail(10).mean()
    assert last < first / 6, (first, last)


def test_full_model_trains_and_resumes_identically(syndof, tmp_path):
    """BDCS on all three roles; interrupted at 3 and resumed = uninterrupted (CPU)."""
    from defocus.train.loop import load_checkpoint

    kw = dict(TINY, iterations=6)
    full = DMENet(**kw).fit(_roles(syndof), {"seed": 1}, tmp_path / "full")
    DMENet(**kw).fit(_roles(syndof), {"seed": 1, "stop_after": 3}, tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["iteration"] == 3
    resumed = DMENet(**kw).fit(_roles(syndof), {"seed": 1}, tmp_path / "cut")
    a, b = load_checkpoint(full), load_checkpoint(resumed)
    assert a["iteration"] == b["iteration"] == 6
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["extra"]["disc"].items():  # the discriminator and its optimiser resume too
        assert torch.equal(v, b["extra"]["disc"][k]), k
    assert a["extra"]["opt_d"]["state"].keys() == b["extra"]["opt_d"]["state"].keys()
    la = pd.read_csv(tmp_path / "full" / "loss.csv")
    lb = pd.read_csv(tmp_path / "cut" / "loss.csv")
    assert list(la.columns) == ["iteration", "loss", "blur", "aux", "content", "calib", "adv",
                                "disc", "lr"]  # fmt: skip
    assert np.array_equal(la["loss"].to_numpy(), lb["loss"].to_numpy())


def test_missing_roles_are_clear_errors(syndof, tmp_path):
    with pytest.raises(ValueError, match="needs the role 'binary'"):
        DMENet(**TINY).fit({"synthetic": [syndof], "real": [syndof]}, {}, tmp_path)
    with pytest.raises(ValueError, match="roles"):
        DMENet(**TINY).fit({"train": [syndof]}, {}, tmp_path)


def test_predict_raw_odd_size_and_checkpoints(syndof, tmp_path):
    from defocus.train.loop import finalize

    m = DMENet(**TINY, subnets="BS", iterations=2)
    ckpt = m.fit({"synthetic": [syndof], "binary": [syndof]}, {"seed": 0}, tmp_path / "w")
    img = np.random.default_rng(0).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    sigma = m.predict_raw(img)
    assert sigma.shape == (37, 53) and sigma.dtype == np.float32
    assert float(sigma.min()) >= 0 and float(sigma.max()) <= m.params["sigma_max"]
    blur = m.predict(img)
    assert blur.shape == (37, 53) and 0 <= blur.min() and blur.max() <= 1
    # the product checkpoint gives the same map
    product = finalize(ckpt, tmp_path / "model.pt", "dmenet@subnets=BS", m.params)
    again = get_method("dmenet@subnets=BS", TINY)
    again.load(product)
    assert np.array_equal(again.predict_raw(img), sigma)
    # wrong architecture, missing file, no checkpoint: MethodError
    with pytest.raises(MethodError, match="other network parameters"):
        DMENet(**TINY, subnets="B").load(product)
    with pytest.raises(MethodError, match="not found"):
        DMENet(**TINY).load(tmp_path / "nope.pt")
    with pytest.raises(MethodError, match="checkpoint"):
        DMENet(**TINY).load(None)
    with pytest.raises(MethodError, match="no weights"):
        DMENet(**TINY).predict_raw(img)


def test_augment_scales_pixel_labels_with_a_shrunk_image():
    """A full-resolution render shrunk to max_side keeps sigma in the shrunk image's pixels."""
    sigma = np.full((100, 150), 4.0, np.float32)
    img = np.zeros((100, 150, 3), np.uint8)
    # short side 100 > max_side 48: resized to 48 (+1 px) -> factors 49/100 and 73/150
    _, lab = augment(img, sigma, np.random.default_rng(0), 32, 48, scale_label=True)
    np.testing.assert_allclose(lab, 4.0 * np.sqrt(49 / 100 * 73 / 150), rtol=1e-5)
    # masks (and the release's own behaviour) keep their values
    _, lab = augment(img, sigma, np.random.default_rng(0), 32, 48)
    np.testing.assert_allclose(lab, 4.0)
    # no resize, no scaling
    _, lab = augment(img, sigma, np.random.default_rng(0), 32, 800, scale_label=True)
    np.testing.assert_allclose(lab, 4.0)


def test_release_target_decodes_coc_as_the_release():
    m = DMENet(**TINY, target="coc")
    out = np.array([0.0, 1 / 15, 0.5, 1.0], np.float32)
    # main.py line 500: sigma = (15 map - 1) / 2, negative values set to 0
    np.testing.assert_allclose(m.map_to_sigma(out), [0.0, 0.0, 3.25, 7.0])
    np.testing.assert_allclose(DMENet(**TINY).map_to_sigma(out), out * 7.0)
    with pytest.raises(ValueError, match="target"):
        DMENet(**TINY, target="depth")
    with pytest.raises(ValueError, match="vgg_input"):
        DMENet(**TINY, vgg_input="bgr")


@pytest.mark.parametrize("bn_scale", [False, True])
def test_batch_norm_scale_is_held_at_one_as_the_release(bn_scale):
    """Release BatchNormLayer(gamma_init=None): no scale; bn_scale=True trains one."""
    torch.manual_seed(0)
    tr = Trainer({**DMENet.defaults, **TINY, "bn_scale": bn_scale})
    for _ in range(2):
        tr.step(tr.model, _batch())
    scales = [
        m.weight
        for net in (tr.model, tr.disc)
        for m in net.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    moved = [not torch.equal(w, torch.ones_like(w)) for w in scales]
    assert all(moved) if bn_scale else not any(moved)
    assert all(w.requires_grad for w in scales) == bn_scale
