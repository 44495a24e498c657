"""DHDE (Park et al. CVPR'17): network, toy training, filtering and propagation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from defocus.methods.dhde import (
    DHDE,
    DHDENet,
    binary_mask,
    inv_lr,
    label_accuracy,
    matting_propagation,
    parse_features,
    prob_joint_bilateral,
)


@pytest.fixture(scope="module")
def patch_file(tmp_path_factory):
    from defocus.datasets.demo import build_demo_sharp
    from defocus.features.patches import sample_patches

    out = tmp_path_factory.mktemp("dhde")
    photos = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins"]
    manifest = build_demo_sharp(photos, 128, out / "sharp")
    return sample_patches(manifest, out / "p.h5", n_per_image=30, seed=0, val_fraction=0.34)


def test_parse_features():
    assert parse_features("fB") == ((0, 1, 2), True)
    assert parse_features("fH") == ((0, 1, 2), False)
    assert parse_features("fD+fS+fC") == ((0, 2), True)
    assert parse_features("fC") == ((), True)
    with pytest.raises(ValueError, match="unknown feature"):
        parse_features("fX")


def test_network_shapes():
    torch.manual_seed(0)
    net = DHDENet().eval()
    rgb = torch.randint(0, 255, (4, 3, 27, 27), dtype=torch.uint8)
    hand = torch.rand(4, 120)
    assert net.deep_feature(rgb).shape == (4, 25)  # 27 -> 25 -> 9 -> 7 -> 3 -> 1 (Caffe ceil)
    assert net(hand, rgb).shape == (4, 11)
    assert net.classifier[0].in_features == 145 and net.classifier[0].bias is None
    only_d = DHDENet(hand=(0,), use_cnn=False)
    assert only_d(hand, None).shape == (4, 11)
    with pytest.raises(ValueError, match="expected RGB patches"):
        net.deep_feature(torch.zeros(2, 3, 15, 15))


def test_inv_lr_is_caffe_inv_policy():
    f = inv_lr(1e-4, 2.0)
    assert f(0) == 1.0
    assert f(10000) == pytest.approx((1 + 1e-4 * 10000) ** -2)  # 0.25


def test_label_accuracy_tolerance_is_one_label_step():
    s = 0.5 + 0.15 * np.arange(11)
    assert label_accuracy(np.array([3, 4, 5]), np.array([4, 4, 7]), s, 0.15) == pytest.approx(2 / 3)


def test_toy_classifier_beats_chance_on_held_out_sources(patch_file, tmp_path):
    # f_H trains in about a second; held-out source images only (no leakage, test_features)
    m = DHDE(features="fH", iterations=300, lr=1e-3, ckpt_every=1000)
    ck = m.fit({"patches": [patch_file]}, {"seed": 0, "device": "cpu", "progress": False}, tmp_path)
    m.load(ck)
    res = m.patch_accuracy([patch_file], "val")
    # chance: 1/11 exact, 31/121 = 25.6 % within one label step
    assert res["exact"] > 1 / 11 + 0.02
    assert res["accuracy"] > 31 / 121 + 0.05


def test_feature_table_rows_and_chance(patch_file, tmp_path):
    # paper Table 1 builder: one row per variant, held-out and training-source accuracy,
    # the paper's value beside it, and the chance row with the +-1 label tolerance
    from defocus.methods.dhde import PAPER_ACCURACY, feature_table

    params = {"iterations": 60, "lr": 1e-3, "ckpt_every": 1000, "optimizer": "adam"}
    df = feature_table([patch_file], ["fG", "fS"], params, 0, "cpu", tmp_path)
    assert list(df["feature"]) == ["fG", "fS", "random guess"]
    assert df["paper_accuracy"].tolist()[:2] == [PAPER_ACCURACY["fG"], PAPER_ACCURACY["fS"]]
    chance = df.set_index("feature").loc["random guess"]
    assert chance["accuracy"] == pytest.approx(100 * 31 / 121)
    assert chance["exact_accuracy"] == pytest.approx(100 / 11)
    body = df.iloc[:2]
    for col in ("accuracy", "exact_accuracy", "train_sources_accuracy"):
        assert body[col].between(0, 100).all()
    assert (body["accuracy"] >= body["exact_accuracy"]).all()  # tolerance only adds hits
    assert (tmp_path / "fG" / "train" / "checkpoint.pt").exists()


def test_fb_two_phases_and_product_checkpoint(patch_file, tmp_path):
    from defocus.train.loop import finalize

    m = DHDE(features="fB", iterations=3, iterations_pretrain=3, batch_size=16)
    ck = m.fit({"patches": [patch_file]}, {"seed": 0, "device": "cpu", "progress": False}, tmp_path)
    assert (tmp_path / "pretrain" / "checkpoint.pt").is_file() and ck.parent.name == "finetune"
    prod = finalize(ck, tmp_path / "model.pt", "dhde@features=fB", m.params)
    m2 = DHDE(features="fC")  # architecture comes from the checkpoint
    m2.load(prod)
    assert m2.params["features"] == "fB" and m2.use_cnn and m2.hand == (0, 1, 2)


def test_registry_ablation_name():
    from defocus.methods.registry import get_method

    m = get_method("dhde@features=fD+fS+fC")
    assert isinstance(m, DHDE) and m.hand == (0, 2) and m.use_cnn


def test_propagation_spreads_a_constant():
    rng = np.random.default_rng(0)
    guide = rng.random((23, 31, 3))
    mask = np.zeros((23, 31), bool)
    mask[::5, ::7] = True
    out = matting_propagation(np.where(mask, 1.3, 0.0), mask, guide)
    np.testing.assert_allclose(out, 1.3, atol=1e-3)


@pytest.mark.parametrize("solver", ["amg", "cg"])
def test_fast_propagation_matches_direct_solve(solver):
    # the iterative solvers agree with SuperLU within their stated tolerance
    # (LAP_TOL; on the 640x427 benchmark image: 0.0004 px mean, 0.005 px max)
    from skimage import data

    guide = data.astronaut()[::6, ::6].astype(np.float64) / 255.0  # 86x86
    rng = np.random.default_rng(0)
    mask = rng.random(guide.shape[:2]) < 0.05
    values = np.where(mask, rng.uniform(0.5, 2.0, mask.shape), 0.0)
    direct = matting_propagation(values, mask, guide, solver="direct")
    fast = matting_propagation(values, mask, guide, solver=solver)
    assert fast.shape == direct.shape and fast.dtype == np.float32
    err = np.abs(fast - direct)
    assert err.mean() < 0.01 and err.max() < 0.05
    tight = matting_propagation(values, mask, guide, solver=solver, tol=1e-8)
    np.testing.assert_allclose(tight, direct, atol=1e-4)
    half = matting_propagation(values, mask, guide, scale=0.5, solver=solver)
    half_direct = matting_propagation(values, mask, guide, scale=0.5, solver="direct")
    assert np.abs(half - half_direct).mean() < 0.01
    with pytest.raises(ValueError, match="lap_solver"):
        matting_propagation(values, mask, guide, solver="lu")


def test_refine_with_direct_solver():
    from skimage import data

    img = data.astronaut()[::8, ::8].copy()
    mask = np.zeros(img.shape[:2], bool)
    mask[::4, ::4] = True
    sparse = np.where(mask, 1.1, 0).astype(np.float32)
    conf = np.where(mask, 0.9, 0).astype(np.float32)
    outs = {}
    for solver in ("direct", "amg"):
        m = DHDE(lap_solver=solver, wmf_iterations=0)
        outs[solver] = m.refine(sparse, conf, mask, m.guide_image(img))
    np.testing.assert_allclose(outs["direct"], 1.1, atol=1e-3)
    assert np.abs(outs["amg"] - outs["direct"]).mean() < 0.01


def test_classify_matches_network_forward():
    # the channels-last, chunked inference path computes the training forward pass
    torch.manual_seed(0)
    m = DHDE(predict_batch=300)
    m.net = m.build_net().eval()
    rng = np.random.default_rng(0)
    feats = rng.random((700, 120)).astype(np.float32)
    rgb = rng.integers(0, 256, (700, 27, 27, 3), dtype=np.uint8)
    prob = m.classify(feats, rgb)
    with torch.no_grad():
        ref = torch.softmax(
            m.net(torch.from_numpy(feats), torch.from_numpy(rgb.transpose(0, 3, 1, 2).copy())), 1
        )
    np.testing.assert_allclose(prob, ref.numpy(), atol=1e-5)
    assert m.classify(feats[:0], rgb[:0]).shape == (0, 11)


def test_deep_features_at_pixels_equal_the_patch_forward():
    # speed-up: conv1 + pool shared over the image (27x27) or on a compact 19x19
    # input (15x15) gives the f_C of the release's per-patch CNN input, border pixels included
    from skimage import data

    from defocus.features.patches import cnn_input, patch_data
    from defocus.methods.dhde import deep_features_at

    torch.manual_seed(0)
    net = DHDENet().eval()
    img = data.astronaut()[100:161, 200:247]  # 61x47, odd sizes
    rng = np.random.default_rng(3)
    rows = np.r_[rng.integers(0, 61, 300), 0, 0, 60, 60, 13, 47]
    cols = np.r_[rng.integers(0, 47, 300), 0, 46, 0, 46, 13, 33]
    scales = np.r_[rng.integers(0, 2, 300), 0, 1, 1, 0, 0, 1].astype(np.uint8)
    rgb, _ = patch_data(img, rows, cols, scales)
    with torch.no_grad():
        ref = net.cnn(torch.from_numpy(cnn_input(rgb, scales)).permute(0, 3, 1, 2).float())
        fast = deep_features_at(net.cnn, img, rows, cols, scales, rgb)
        cl = net.cnn.to(memory_format=torch.channels_last)
        fast_cl = deep_features_at(cl, img, rows, cols, scales, rgb)
        none = deep_features_at(net.cnn, img, rows[:0], cols[:0], scales[:0], rgb[:0])
    assert fast.shape == (306, 25) and none.shape == (0, 25)
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fast_cl.numpy(), ref.numpy(), rtol=1e-5, atol=1e-4)
    assert ref.abs().max() > 1  # not a trivially zero feature


def test_prob_joint_bilateral_matches_brute_force():
    rng = np.random.default_rng(1)
    h, w = 15, 17
    guide = rng.random((h, w, 3)).astype(np.float32)
    mask = rng.random((h, w)) < 0.3
    sparse = np.where(mask, rng.uniform(0.5, 2.0, (h, w)), 0).astype(np.float32)
    conf = np.where(mask, rng.uniform(0.1, 1.0, (h, w)), 0).astype(np.float32)
    out = prob_joint_bilateral(sparse, conf, mask, guide, window=7, sigma_s=100, sigma_r=100)
    # Eq. 6 by hand on a disc of radius 3 (OpenCV's window), sigma_s = sigma_r = 100
    ys, xs = np.nonzero(mask)
    for y, x in zip(ys[:10], xs[:10], strict=True):
        num = den = 0.0
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                py, px = y + dy, x + dx
                if dy * dy + dx * dx > 9 or not (0 <= py < h and 0 <= px < w) or not mask[py, px]:
                    continue
                d = np.abs(guide[y, x] - guide[py, px]).sum()  # OpenCV: L1 colour distance
                wgt = np.exp(-(dy * dy + dx * dx) / 2e4) * np.exp(-(d * d) / 2e4)
                wgt *= np.exp(-((1 - conf[py, px]) ** 2) / 2)
                num += wgt * sparse[py, px]
                den += wgt
        assert out[y, x] == pytest.approx(num / den, rel=2e-3)
    assert np.all(out[~mask] == 0)


@pytest.mark.parametrize("window", [7, 27])
def test_prob_joint_bilateral_edge_gather_matches_opencv(window):
    # the default filter evaluates Eq. 6 only at the mask pixels; it equals the
    # whole-image OpenCV filter there to float32 rounding (stated tolerance: 1e-5 relative)
    from skimage import data

    guide = data.astronaut()[::5, ::5].astype(np.float32) / 255.0  # 103x103, real colours
    rng = np.random.default_rng(2)
    mask = rng.random(guide.shape[:2]) < 0.08
    mask[:3] = True  # pixels at the border (zero padding)
    sparse = np.where(mask, rng.uniform(0.5, 2.0, mask.shape), 0).astype(np.float32)
    conf = np.where(mask, rng.uniform(0.05, 1.0, mask.shape), 0).astype(np.float32)
    ref = prob_joint_bilateral(sparse, conf, mask, guide, window, 5.0, 0.3, impl="opencv")
    fast = prob_joint_bilateral(sparse, conf, mask, guide, window, 5.0, 0.3)
    assert fast.dtype == np.float32 and np.all(fast[~mask] == 0) and np.all(ref[~mask] == 0)
    np.testing.assert_allclose(fast[mask], ref[mask], rtol=1e-5)
    # the paper's sigmas (both weights ~1) and a constant guide (OpenCV's fallback)
    for g in (guide, np.full_like(guide, 0.5)):
        a = prob_joint_bilateral(sparse, conf, mask, g, window, impl="opencv")
        np.testing.assert_allclose(prob_joint_bilateral(sparse, conf, mask, g, window), a, 1e-5)
    with pytest.raises(ValueError, match="impl"):
        prob_joint_bilateral(sparse, conf, mask, guide, impl="cuda")


def test_relu_pool3_equals_the_network_layers():
    from defocus.methods.dhde import _relu_pool3

    torch.manual_seed(0)
    for h, w in ((25, 25), (7, 7), (9, 10), (4, 3)):
        x = torch.randn(3, 5, h, w).contiguous(memory_format=torch.channels_last)
        ref = nn_pool(torch.relu(x))
        assert torch.equal(_relu_pool3(x), ref)


def nn_pool(x):
    return torch.nn.functional.max_pool2d(x, 3, 3, ceil_mode=True)


def test_refine_recovers_a_uniform_sigma_from_sparse_estimates():
    # the confidence -> filtering -> propagation part with hand-set sparse inputs: noisy
    # labels around sigma 1.25 with low confidence on the outliers
    from skimage import data

    img = data.astronaut()[::8, ::8].copy()  # 64x64
    m = DHDE(wmf_iterations=1)
    rng = np.random.default_rng(0)
    mask = rng.random(img.shape[:2]) < 0.1
    sparse = np.where(mask, 1.25, 0).astype(np.float32)
    conf = np.where(mask, 0.9, 0).astype(np.float32)
    out_idx = mask & (rng.random(mask.shape) < 0.1)
    sparse[out_idx], conf[out_idx] = 2.0, 0.2
    full = m.refine(sparse, conf, mask, m.guide_image(img))
    assert full.shape == img.shape[:2]
    assert abs(float(np.median(full)) - 1.25) < 0.1


def test_predict_raw_on_odd_size_with_untrained_net():
    from skimage import data

    img = data.astronaut()[:73:2, :91:2].copy()  # 37 x 46, odd
    m = DHDE(wmf_iterations=0)
    torch.manual_seed(0)
    m.net = m.build_net().eval()
    raw = m.predict_raw(img)
    assert raw.shape == img.shape[:2] and raw.dtype == np.float32 and np.isfinite(raw).all()
    pred = m.predict(img)
    assert pred.min() >= 0 and pred.max() <= 1
    with pytest.raises(ValueError, match="RGB uint8"):
        m.predict_raw(img.astype(np.float32))


def test_predict_without_checkpoint_raises():
    from defocus.methods.base import MethodError

    with pytest.raises(MethodError, match="no trained network"):
        DHDE().predict_raw(np.zeros((16, 16, 3), np.uint8))


def test_binary_mask_threshold():
    s = np.array([[0.5, 0.9], [1.0, 2.0]])
    # tau = 0.3 * 2.0 + 0.7 * 0.5 = 0.95 (Eq. 13)
    np.testing.assert_array_equal(binary_mask(s), [[False, False], [True, True]])


def test_default_prediction_is_deterministic():
    """Two runs on the same image give the same sigma map (tables must be reproducible)."""
    import torch
    from skimage import data

    from defocus.methods.dhde import DHDE

    torch.manual_seed(0)
    m = DHDE()
    m.net = m.build_net().eval()
    img = data.astronaut()[::8, ::8].copy()
    assert np.array_equal(m.predict_raw(img), m.predict_raw(img))
