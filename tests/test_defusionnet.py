"""DeFusionNet (Tang et al. CVPR'19): stage shapes, FFRM wiring and ablations, training on a
few tiny half-blurred photographs (overfit + bit-identical resume), prediction contract.

Everything runs at demo scale on the CPU: a VGG16 of 1/16 (or 1/8) width, 4-channel side
features, 32-64 px images, random initialisation (no ImageNet weights offline).
"""

import numpy as np
import pandas as pd
import pytest
import torch

from defocus.methods.base import MethodError
from defocus.methods.defusionnet import (
    LAYERS,
    DeFusionNet,
    DeFusionNetModel,
    augment,
    deep_supervision_loss,
)
from defocus.methods.registry import get_method
from defocus.train.loop import load_checkpoint, save_checkpoint

TINY = {"vgg_width": 1 / 16, "side_channels": 4, "pretrained": False}
N = len(LAYERS)  # n = 6 (Sec. 3.3)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny tensors on a shared CPU are slower with more."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _net(**kw) -> DeFusionNetModel:
    torch.manual_seed(0)
    return DeFusionNetModel(**{**TINY, **kw}).eval()


def _demo_set(root, n=4, size=64):
    """``n`` scikit-image photographs, Gaussian-blurred (sigma 2.5 px) under known masks."""
    import cv2
    from skimage import data

    from defocus.io.image import write_image
    from defocus.io.manifest import write_manifest

    yy, xx = np.mgrid[:size, :size]
    masks = [
        xx >= size // 2,  # right half blurred
        (yy - size / 2) ** 2 + (xx - size / 2) ** 2 > (size / 3) ** 2,  # sharp disk
        yy < size // 2,  # top half blurred
        xx < size // 2,  # left half blurred
    ]
    rows, pairs = [], []
    root.mkdir(parents=True, exist_ok=True)
    for name, mask in zip(["astronaut", "chelsea", "coffee", "rocket"][:n], masks, strict=False):
        sharp = cv2.resize(getattr(data, name)(), (size, size), interpolation=cv2.INTER_AREA)
        image = np.where(mask[..., None], cv2.GaussianBlur(sharp, (0, 0), 2.5), sharp)
        write_image(root / f"{name}.png", image)
        write_image(root / f"{name}_gt.png", mask.astype(np.uint8) * 255)
        rows.append({"id": name, "split": "train", "image": f"{name}.png", "gt": f"{name}_gt.png"})
        pairs.append((image, mask))
    write_manifest(rows, root / "manifest.csv")
    return root / "manifest.csv", pairs


# -- stages (Sec. 3, Eq. 1-4) ------------------------------------------------------------------
def test_stage_shapes():
    net = _net()
    x = torch.rand(2, 3, 64, 96)
    assert net.strides == [1, 2, 4, 8, 16, 32]  # conv1_2 .. conv5_3, pool5 of VGG16
    feats = net.side_features(x)  # F_i^0, upsampled by deconvolution to the input size
    assert len(feats) == N and all(f.shape == (2, 4, 64, 96) for f in feats)
    g = net.fused_features(feats, 0)  # Eq. 1-2
    assert set(g) == {"fshf", "fsef"} and all(v.shape == (2, 4, 64, 96) for v in g.values())
    assert all((v >= 0).all() for v in g.values())  # ReLU
    refined = net.refine_step(feats, 0)  # Eq. 3: channel count restored
    assert len(refined) == N and all(f.shape == (2, 4, 64, 96) for f in refined)
    out = net(x)
    assert len(out["side"]) == 3 and all(len(s) == N for s in out["side"])
    assert all(b.shape == (2, 1, 64, 96) for s in out["side"] for b in s)
    assert out["fused"].shape == (2, 1, 64, 96)  # Eq. 4
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 48, 64))


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_steps_change_the_graph(steps):
    """Step_k (Table 4): k refining steps, 6k side outputs + the fused one (Eq. 6)."""
    net = _net(steps=steps)
    assert len(net.refine) == steps and len(net.score) == steps
    out = net(torch.rand(1, 3, 32, 32))
    assert sum(len(s) for s in out["side"]) + 1 == N * steps + 1
    loss, logs = deep_supervision_loss(out, torch.zeros(1, 1, 32, 32))
    assert loss.item() > logs["fused"] > 0


def _dependence(net, j_changed):
    """Which layers' refined features change when only layer ``j_changed``'s input changes."""
    torch.manual_seed(1)
    feats = [torch.rand(1, 4, 32, 32) for _ in range(N)]
    base = net.refine_step(feats, 0)
    feats[j_changed] = feats[j_changed] + 1.0
    moved = net.refine_step(feats, 0)
    return [not torch.equal(a, b) for a, b in zip(base, moved, strict=True)]


def test_ffrm_is_cross_layer():
    """Eq. 3: shallow layers see FSEF (deep layers only), deep layers see FSHF (shallow only)."""
    net = _net()
    with torch.no_grad():
        # changing shallow layer 2 (index 1) moves itself and, through FSHF, every deep layer
        assert _dependence(net, 1) == [False, True, False, True, True, True]
        # changing deep layer 5 (index 4) moves itself and, through FSEF, every shallow layer
        assert _dependence(net, 4) == [True, True, True, False, True, False]


def test_no_ffrm_fuses_all_layers_in_one_group():
    """DeFusionNet_noFFRM (Sec. 4.4): one group of all layers refines every layer."""
    net = _net(ffrm=False)
    assert hasattr(net, "fuse_all") and not hasattr(net, "fuse_shallow")
    assert net.fuse_all[0].in_channels == N * 4
    with torch.no_grad():
        assert set(net.fused_features([torch.rand(1, 4, 32, 32)] * N, 0)) == {"all"}
        assert _dependence(net, 1) == [True] * N
    assert len(_net(share_fusion=False, steps=2).fuse_shallow) == 2


# -- the method: parameters, ablation names, prediction --------------------------------------
def _loaded(tmp_path, **params) -> DeFusionNet:
    """A method loaded from a product-style checkpoint of an untrained tiny network."""
    m = DeFusionNet(**{**TINY, "infer_size": 64, **params})
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "model.pt", {"model": m.build().state_dict(), "params": m.params})
    m.load(tmp_path / "model.pt")
    return m


def test_ablation_names_and_validation():
    m = get_method("defusionnet@ffrm=false,steps=2,output=3")
    assert (m.params["ffrm"], m.params["steps"], m.params["output"]) == (False, 2, 3)
    assert get_method("defusionnet@output=fused").params["output"] == "fused"
    for bad in ({"output": 7}, {"output": "mean"}, {"steps": 0}, {"ffrm": "no"}, {"crop": 40},
                {"optimizer": "rmsprop"}):  # fmt: skip
        with pytest.raises(ValueError):
            DeFusionNet(**bad)


def test_output_k_returns_layer_k(tmp_path, photo):
    """DeFusionNet_Ok (Table 3): layer k's last-step map alone, same weights."""
    fused = _loaded(tmp_path)
    image = photo[:64, :64]  # already a multiple of 32: no resizing in predict
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out = fused._net(x)
    for k in (1, 3, 6):
        m = _loaded(tmp_path, output=k)
        want = torch.sigmoid(out["side"][-1][k - 1])[0, 0].numpy()
        assert np.allclose(m.predict(image), want, atol=1e-6)
    assert np.allclose(fused.predict(image), torch.sigmoid(out["fused"])[0, 0].numpy(), atol=1e-6)


@pytest.mark.parametrize("infer_size", [64, None])
def test_predict_odd_size(tmp_path, photo, infer_size):
    m = _loaded(tmp_path, infer_size=infer_size)
    image = np.ascontiguousarray(photo[:37, :51])
    out = m.predict(image)
    assert out.shape == (37, 51) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="RGB uint8"):
        m.predict(image[..., 0])


def test_learned_method_needs_a_checkpoint(tmp_path, photo):
    with pytest.raises(MethodError, match="checkpoint"):
        DeFusionNet(**TINY).load(None)
    with pytest.raises(MethodError, match="no weights"):
        DeFusionNet(**TINY).predict(photo)
    _loaded(tmp_path)  # writes model.pt with steps=3
    with pytest.raises(MethodError, match="other network parameters"):
        DeFusionNet(**{**TINY, "steps": 2}).load(tmp_path / "model.pt")


# -- training ----------------------------------------------------------------------------------
def test_augment_is_seeded_and_sized():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    gt = (np.arange(56)[None, :] >= 28).repeat(40, 0).astype(np.float32)
    a = augment(image, gt, np.random.default_rng([1, 0, 5]), 32, 10.0, 0.7, True)
    b = augment(image, gt, np.random.default_rng([1, 0, 5]), 32, 10.0, 0.7, True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == (32, 32, 3) and a[0].dtype == np.uint8 and a[1].shape == (32, 32)
    assert set(np.unique(a[1])) <= {0.0, 1.0}  # nearest-neighbour GT stays binary


def test_fit_rejects_other_roles(tmp_path):
    with pytest.raises(ValueError, match="role 'train'"):
        DeFusionNet(**TINY).fit({"patches": []}, {"seed": 0}, tmp_path)


def test_overfits_a_few_images(tmp_path):
    """Loss falls by a large factor and F-beta rises on 4 half-blurred photographs.

    Adam (the demo knob), no rotation/resize/flip: the point is that the whole graph
    (backbone, side convs, deconvolutions, FFRM, deep supervision, fusion) learns.
    """
    from defocus.evaluate.metrics import BinaryEvaluator

    manifest, pairs = _demo_set(tmp_path / "data")
    m = DeFusionNet(
        vgg_width=1 / 8, side_channels=8, pretrained=False, crop=64, infer_size=64,
        iterations=150, batch_size=2, optimizer="adam", lr=3e-3, weight_decay=0.0,
        lr_step=10**6, ckpt_every=1000, aug_rotate_deg=0.0, aug_scale_min=1.0, aug_flip=False,
    )  # fmt: skip

    def scores():
        ev = BinaryEvaluator()
        for k, (image, mask) in enumerate(pairs):
            ev.step(str(k), m.predict(image), mask)
        return ev.summary()

    data = {"train": [manifest]}
    m.fit(data, {"seed": 0, "device": "cpu", "stop_after": 1}, tmp_path / "work")
    before = scores()
    m.fit(data, {"seed": 0, "device": "cpu"}, tmp_path / "work")  # resumes to 150
    after = scores()
    loss = pd.read_csv(tmp_path / "work" / "loss.csv")["loss"].to_numpy()
    assert len(loss) == 150
    assert loss[-10:].mean() < 0.2 * loss[:5].mean()
    assert after["f_beta"] > 0.95 and after["f_beta"] > before["f_beta"] + 0.2
    assert after["mae"] < 0.1 < before["mae"]


def test_resume_is_bit_identical(tmp_path):
    """Interrupted at iteration 3 and resumed == uninterrupted (CPU), with augmentation on."""
    manifest, _ = _demo_set(tmp_path / "data", n=2, size=48)
    params = {**TINY, "crop": 32, "iterations": 6, "batch_size": 2, "lr": 1e-2, "lr_step": 4,
              "ckpt_every": 2}  # fmt: skip
    data = {"train": [manifest]}
    full = DeFusionNet(**params).fit(data, {"seed": 3}, tmp_path / "full")
    DeFusionNet(**params).fit(data, {"seed": 3, "stop_after": 3}, tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["iteration"] == 3
    resumed = DeFusionNet(**params).fit(data, {"seed": 3}, tmp_path / "cut")
    a, b = load_checkpoint(full), load_checkpoint(resumed)
    assert a["iteration"] == b["iteration"] == 6
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    la = pd.read_csv(tmp_path / "full" / "loss.csv")
    lb = pd.read_csv(tmp_path / "cut" / "loss.csv")
    assert np.array_equal(la["loss"].to_numpy(), lb["loss"].to_numpy())
    assert la["lr"].iloc[-1] == pytest.approx(1e-3)  # x0.1 after lr_step (Sec. 3.3)
