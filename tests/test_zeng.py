"""Zeng et al. TIP'19 (``zeng``): patches, ConvNet, PCA kernels, tanh refinement, end to end.

Every test runs in a few seconds on one CPU core. The half-blurred images are real
scikit-image photographs with one half replaced by a Gaussian blur of sigma 2.5 px.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from defocus.methods.base import MethodError
from defocus.methods.registry import get_method
from defocus.methods.zeng import (
    BLURRED,
    SHARP,
    CReLU,
    Zeng,
    ZengNet,
    classify,
    local_metric,
    metric_kernels,
    normalise_metric,
    pca_kernels,
    refine,
    superpixel_patches,
)

#: a tiny configuration that trains in a few seconds on one core
TINY = {"patch": 16, "kernels": 8, "widths": [8], "fc": 16, "batch": 32, "lr": 1e-3}


def half_blurred(img: np.ndarray, side: str = "right", sigma: float = 2.5):
    """``img`` with one half Gaussian-blurred, and the mask of that half (True = blurred)."""
    h, w = img.shape[:2]
    mask = np.zeros((h, w), bool)
    if side == "right":
        mask[:, w // 2 :] = True
    else:
        mask[:, : w // 2] = True
    out = img.copy()
    out[mask] = cv2.GaussianBlur(img, (0, 0), sigma)[mask]
    return out, mask


def _photo(name: str, size: tuple[int, int]) -> np.ndarray:
    from skimage import data

    return cv2.resize(getattr(data, name)(), size, interpolation=cv2.INTER_AREA)


def _derivative_kernels() -> np.ndarray:
    """x and y derivatives of a Gaussian (sigma 1.5) on 7x7: a fixed, known sharpness pair."""
    r = np.arange(-3, 4, dtype=np.float64)
    y, x = np.meshgrid(r, r, indexing="ij")
    g = np.exp(-(x**2 + y**2) / (2 * 1.5**2))
    return metric_kernels(np.stack([x * g, y * g]))


# -- PCA of kernels ----------------------------------------------------------------------
def test_pca_recovers_principal_directions():
    rng = np.random.default_rng(0)
    # two orthogonal 7x7 patterns (orthonormalised random patterns)
    q, _ = np.linalg.qr(rng.normal(size=(49, 2)))
    p1, p2 = q[:, 0], q[:, 1]
    n = 64
    a = rng.normal(0, 3.0, size=n)  # larger spread along p1 -> first component
    b = rng.normal(0, 1.5, size=n)
    kernels = (a[:, None] * p1 + b[:, None] * p2 + rng.normal(0, 0.05, size=(n, 49))).reshape(
        n, 1, 7, 7
    )
    comps, ratio = pca_kernels(kernels, 2)
    assert comps.shape == (2, 7, 7)
    c = comps.reshape(2, 49)
    assert abs(c[0] @ p1) > 0.95 and abs(c[1] @ p2) > 0.95
    assert ratio[0] > ratio[1] > 0 and ratio.sum() > 0.9


def test_metric_kernels_are_orthonormal_and_zero_mean():
    rng = np.random.default_rng(1)
    k = metric_kernels(rng.normal(size=(2, 7, 7)) + 3.0).reshape(2, 49).astype(np.float64)
    np.testing.assert_allclose(k @ k.T, np.eye(2), atol=1e-5)
    np.testing.assert_allclose(k.sum(axis=1), 0.0, atol=1e-5)


# -- refinement --------------------------------------------------------------------------
def test_refine_zeroes_below_threshold_and_saturates_above():
    b0 = np.full((40, 60), 0.05, np.float32)
    b0[:, :30] = 0.8
    combined, maps = refine(b0, threshold=float(b0.mean()))
    assert set(maps) == {10, 50, 100}
    # blurred side (mean 0.05 < T) is zero from the first iteration; sharp side -> 1
    assert np.all(maps[10][:, 34:] == 0) and np.all(combined[:, 34:] == 0)
    assert maps[100][:, :26].min() > 0.99
    assert np.all(maps[10][:, :26] > 0.8)
    np.testing.assert_allclose(combined, 0.3 * maps[10] + 0.2 * maps[50] + 0.5 * maps[100])


def test_refine_raises_sharp_and_zeroes_blurred_on_a_photo(photo):
    img, blurred = half_blurred(photo)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    b0 = normalise_metric(local_metric(grey, _derivative_kernels(), 7))
    s, _ = refine(b0, threshold=float(b0.mean()))
    w = photo.shape[1]
    sharp, blur = np.zeros_like(blurred), np.zeros_like(blurred)
    sharp[:, : w // 2 - 8] = True  # leave 8 px either side of the seam out
    blur[:, w // 2 + 8 :] = True
    assert s[sharp].mean() > b0[sharp].mean()
    assert s[blur].mean() < b0[blur].mean()
    assert (s[blur] == 0).mean() > 0.8
    assert s[sharp].mean() > 2 * s[blur].mean()


# -- patches and network -----------------------------------------------------------------
def test_patches_are_labelled_from_the_gt():
    img = np.zeros((64, 96, 3), np.uint8)
    img[:, 48:] = 255
    rng = np.random.default_rng(0)
    img[:, :48] = rng.integers(0, 60, size=(64, 48, 1))  # texture for SLIC on the dark side
    gt = np.zeros((64, 96), bool)
    gt[:, 48:] = True  # bright half "blurred"
    x, y = superpixel_patches(img, gt, patch=16, n_segments=40, label_threshold=0.9)
    assert x.shape[1:] == (16, 16) and x.dtype == np.uint8 and len(x) == len(y)
    assert (y == BLURRED).any() and (y == SHARP).any()
    means = x.reshape(len(x), -1).mean(1)
    assert means[y == BLURRED].min() > 0.85 * 255
    assert means[y == SHARP].max() < 0.15 * 255


def test_crelu_doubles_channels():
    x = torch.randn(2, 3, 5, 5)
    y = CReLU()(x)
    assert y.shape == (2, 6, 5, 5)
    assert torch.equal(y[:, :3] - y[:, 3:], x)


def test_network_output_shape():
    net = ZengNet(kernels=8, widths=(8, 16), fc=16, patch=32).eval()
    assert net(torch.rand(4, 1, 32, 32)).shape == (4, 2)
    assert net.conv1.weight.shape == (8, 1, 7, 7)
    with pytest.raises(ValueError, match="divisible"):
        ZengNet(patch=30)


def test_convnet_beats_chance_on_held_out_patches(tmp_path):
    torch.set_num_threads(1)
    train_img, train_gt = half_blurred(_photo("astronaut", (256, 256)))
    test_img, test_gt = half_blurred(_photo("chelsea", (300, 200)), side="left")
    xa, ya = superpixel_patches(train_img, train_gt, patch=16, n_segments=400)
    xt, yt = superpixel_patches(test_img, test_gt, patch=16, n_segments=300)
    z = Zeng(**TINY, iterations=150)
    z.fit_patches(xa, ya, {"seed": 0, "device": "cpu", "progress": False}, tmp_path)
    pred = classify(z.model, xt)
    balanced = np.mean([(pred[yt == c] == c).mean() for c in (SHARP, BLURRED)])
    assert balanced > 0.6, balanced  # chance is 0.5


# -- the method end to end ---------------------------------------------------------------
def _tiny_manifest(tmp_path: Path) -> Path:
    from defocus.io.image import write_image
    from defocus.io.manifest import write_manifest

    rows = []
    for name, side in [("astronaut", "right"), ("coffee", "left")]:
        img, gt = half_blurred(_photo(name, (160, 120)), side=side)
        write_image(tmp_path / f"{name}.png", img)
        write_image(tmp_path / f"{name}_gt.png", (gt * 255).astype(np.uint8))
        rows.append({"id": name, "split": "train", "image": f"{name}.png", "gt": f"{name}_gt.png"})
    write_manifest(rows, tmp_path / "manifest.csv")
    return tmp_path / "manifest.csv"


def test_end_to_end_predict_ranks_blurred_half_above_sharp(tmp_path):
    from defocus.train.loop import finalize

    torch.set_num_threads(1)
    manifest = _tiny_manifest(tmp_path)
    params = {**TINY, "iterations": 40, "n_segments": 100}
    z = get_method("zeng", params)
    assert isinstance(z, Zeng) and z.learned
    ckpt = z.fit(
        {"train": [manifest]}, {"seed": 0, "device": "cpu", "progress": False}, tmp_path / "w"
    )
    model_pt = finalize(ckpt, tmp_path / "model.pt", "zeng", z.params)
    fresh = get_method("zeng", params)
    fresh.load(model_pt)
    assert fresh.kernels.shape == (2, 7, 7)
    img, blurred = half_blurred(_photo("chelsea", (200, 150)), side="left")
    out = fresh.predict(img)
    assert out.shape == img.shape[:2] and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert out[blurred].mean() > out[~blurred].mean() + 0.2


@pytest.mark.parametrize("shape", [(37, 53), (8, 9), (61, 8)])
def test_odd_image_sizes(shape):
    z = Zeng()
    torch.manual_seed(0)
    z.set_first_layer(ZengNet().conv1.weight.detach().numpy())
    img = np.random.default_rng(0).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    out = z.predict(img)
    assert out.shape == shape and out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))


def test_missing_or_bad_checkpoint_is_a_method_error(tmp_path):
    z = Zeng()
    with pytest.raises(MethodError, match="needs a checkpoint"):
        z.load(None)
    with pytest.raises(MethodError, match="not found"):
        z.load(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MethodError, match="cannot read"):
        z.load(tmp_path / "garbage.pt")
    torch.save({"model": {"other.weight": torch.zeros(1)}}, tmp_path / "foreign.pt")
    with pytest.raises(MethodError, match="not a zeng checkpoint"):
        z.load(tmp_path / "foreign.pt")
    with pytest.raises(MethodError, match="load"):
        z.predict(np.zeros((16, 16, 3), np.uint8))


def test_unknown_parameter_is_rejected():
    with pytest.raises(ValueError, match="unknown parameter"):
        Zeng(kernel=7)
