"""Hand-crafted DHDE features and the patch file (Park et al. CVPR'17)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.fft

from defocus.features import handcrafted as hc
from defocus.features import patches as pt


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from defocus.datasets.demo import build_demo_sharp

    out = tmp_path_factory.mktemp("sharp")
    return build_demo_sharp(["astronaut", "chelsea", "coffee", "camera"], 96, out)


def step_patches(size: int, sigma: float) -> np.ndarray:
    """A vertical step edge (0.8 | 0) blurred by a Gaussian of ``sigma`` (0 = sharp).

    The right side is black because the release zero-pads the patch at its right and bottom
    before the DCT: a bright right side would add a second, sharp edge at the padding that
    masks the blur of the step itself.
    """
    from scipy import ndimage

    p = np.full((size, size), 0.8)
    p[:, size // 2 :] = 0.0
    if sigma > 0:
        p = ndimage.gaussian_filter(p, sigma, mode="nearest")
    return p[None]


def test_constant_patch_has_no_gradient_and_rank_one():
    c = np.full((3, 27, 27), 0.5)
    fg = hc.gradient_features(c, 1)
    np.testing.assert_allclose(fg[:, 0], 1.0)  # all mass in the zero-gradient bin
    np.testing.assert_allclose(fg[:, 1:], 0.0)
    fs = hc.svd_features(c, 1)
    assert np.all(fs[:, 0] > 0.99) and np.all(fs[:, 1:] < 1e-6)  # rank one


@pytest.mark.parametrize("scale", [0, 1])
def test_svd_feature_equals_lapack_singular_values(scale):
    # f_S takes singular values from the Gram matrix's eigenvalues; reference: LAPACK's SVD
    # with the log / L1 steps written out, on random, rank-2 and near-constant patches
    rng = np.random.default_rng(4)
    s = hc.PATCH_SIZE[scale]
    g = rng.random((5, s, s))
    g[1] = np.outer(rng.random(s), rng.random(s)) + np.outer(rng.random(s), rng.random(s))
    g[2] = 0.5 + 1e-4 * rng.random((s, s))
    sv = np.linalg.svd(g, compute_uv=False)[:, : hc.N_BINS[scale]]
    ref = np.log1p(sv) / np.log1p(sv).sum(1, keepdims=True)
    np.testing.assert_allclose(hc.svd_features(g, scale), ref, atol=1e-7)


def test_black_patch_gives_zero_dct_without_nan():
    z = np.zeros((2, 15, 15))
    f = hc.handcrafted_features(z, 0)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(hc.dct_features(z, 0), 0.0)


def test_dct_matches_scipy_with_explicit_rings():
    # independent reference: scipy's orthonormal DCT-II of the zero-padded patch and the
    # rings of ParameterSetting.m written out with a loop
    rng = np.random.default_rng(1)
    g = rng.random((4, 15, 15))
    pad = np.zeros((4, 16, 16))
    pad[:, :15, :15] = g
    coef = np.abs(scipy.fft.dctn(pad, axes=(1, 2), norm="ortho"))
    yy, xx = np.mgrid[0:16, 0:16]
    rho = np.sqrt(xx**2 + yy**2)
    b = np.linspace(0, 15, 14)
    o = 0.1 * 15 / 13
    ref = np.stack(
        [coef[:, (rho >= b[k] - o) & (rho <= b[k + 1] + o)].mean(axis=1) for k in range(13)], 1
    )
    ref = np.log1p(ref)
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(hc.dct_features(g, 0), ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("scale", [0, 1])
def test_sharp_step_has_more_high_frequency_and_longer_svd_tail(scale):
    size = hc.PATCH_SIZE[scale]
    sharp, blurry = step_patches(size, 0), step_patches(size, 2.0)
    half = hc.N_BINS[scale] // 2
    d_sharp, d_blur = hc.dct_features(sharp, scale), hc.dct_features(blurry, scale)
    assert d_sharp[0, half:].sum() > d_blur[0, half:].sum()
    # a step is rank one; shift it per row so the patch has a genuine singular-value tail
    rows = np.arange(size)[:, None]
    sharp_t = np.where(np.arange(size)[None] >= size // 2 + rows % 3 - 1, 0.8, 0.2)[None]
    from scipy import ndimage

    blur_t = ndimage.gaussian_filter(sharp_t[0], 2.0, mode="nearest")[None]
    s_sharp, s_blur = hc.svd_features(sharp_t, scale), hc.svd_features(blur_t, scale)
    assert s_sharp[0, 2:].sum() > s_blur[0, 2:].sum()
    g_sharp, g_blur = hc.gradient_features(sharp, scale), hc.gradient_features(blurry, scale)
    assert np.argmax(g_sharp[0, 1:]) > np.argmax(g_blur[0, 1:])  # stronger gradients


def test_scale_encoding_layout():
    # Figure 7 / release layout of a 40-d block: [large 25, 1, small 13, 1]
    big = hc.encode_scale(np.full((1, 25), 0.04), 1)[0]
    small = hc.encode_scale(np.full((1, 13), 0.1), 0)[0]
    assert big.shape == small.shape == (40,)
    assert big[25] == 1 and np.all(big[26:] == 0) and np.allclose(big[:25], 0.04)
    assert small[39] == 1 and np.all(small[:26] == 0) and np.allclose(small[26:39], 0.1)
    with pytest.raises(ValueError, match="expects features of shape"):
        hc.encode_scale(np.zeros((1, 13)), 1)
    with pytest.raises(ValueError, match="expects 27x27"):
        hc.handcrafted_features(np.zeros((1, 15, 15)), 1)


def test_gradient_histogram_of_a_ramp():
    # forward differences of a horizontal ramp of slope 0.5 per pixel: magnitude
    # 0.5 / sqrt(2) = 0.354 everywhere -> bin floor(0.354 * 13) = 4 of 13
    ramp = np.tile(np.arange(15) * 0.5, (15, 1))[None]
    f = hc.gradient_features(ramp, 0)
    assert np.argmax(f[0]) == int(np.floor(0.5 / np.sqrt(2) * 13))
    assert np.count_nonzero(f[0]) == 1


def test_cnn_input_replicates_the_small_patch():
    rng = np.random.default_rng(0)
    p = rng.integers(0, 255, (2, 27, 27, 3), dtype=np.uint8)
    out = pt.cnn_input(p, np.array([0, 1]))
    np.testing.assert_array_equal(out[1], p[1])
    np.testing.assert_array_equal(out[0, 6:21, 6:21], p[0, 6:21, 6:21])
    np.testing.assert_array_equal(out[0, 0, 0], p[0, 6, 6])  # corner replicated
    np.testing.assert_array_equal(out[0, 26, 10], p[0, 20, 10])


def test_patch_file_written_split_and_deterministic(manifest, tmp_path):
    a = pt.sample_patches(manifest, tmp_path / "a.h5", n_per_image=6, seed=3, val_fraction=0.25)
    b = pt.sample_patches(manifest, tmp_path / "b.h5", n_per_image=6, seed=3, val_fraction=0.25)
    c = pt.sample_patches(manifest, tmp_path / "c.h5", n_per_image=6, seed=4, val_fraction=0.25)
    assert not list(tmp_path.glob("*.tmp*"))  # atomic: no temporary left behind
    with h5py.File(a) as h5, h5py.File(b) as h5b, h5py.File(c) as h5c:
        n = h5["label"].shape[0]
        assert h5["patches_large"].shape == (n, 27, 27, 3)
        assert h5["patches_large"].dtype == np.uint8
        assert h5["features"].shape == (n, 120)
        assert set(np.unique(h5["label"][:])) == set(range(11))
        assert set(np.unique(h5["scale"][:])) == {0, 1}
        # balanced scales and 11 labels per location
        assert np.sum(h5["scale"][:] == 0) == np.sum(h5["scale"][:] == 1)
        # split by source: no source in both splits
        src, split = h5["source"][:], h5["split"][:]
        assert set(src[split == 0]).isdisjoint(src[split == 1])
        assert len(json.loads(h5.attrs["val_sources"])) == 1
        np.testing.assert_allclose(h5.attrs["sigmas"], 0.5 + 0.15 * np.arange(11))
        for k in ("patches_large", "features", "center", "split"):
            np.testing.assert_array_equal(h5[k][:], h5b[k][:])
        assert not np.array_equal(h5["center"][:], h5c["center"][:])
    tr, va = pt.load_patches([a], "train"), pt.load_patches([a], "val")
    assert len(tr["label"]) + len(va["label"]) == n
    assert set(tr["source"]).isdisjoint(set(va["source"]))


def test_stored_features_match_recomputation(manifest, tmp_path):
    # the stored features of a large patch equal those of its stored context (up to the
    # gradient's last column, which the release takes from beyond the patch)
    f = pt.sample_patches(manifest, tmp_path / "p.h5", n_per_image=3, seed=0)
    d = pt.load_patches([f])
    big = np.flatnonzero(d["scale"] == 1)[:5]
    v = hc.value_channel(d["patches_large"][big])
    np.testing.assert_allclose(
        d["features"][big, :40], hc.encode_scale(hc.dct_features(v, 1), 1), atol=1e-5
    )
    np.testing.assert_allclose(
        d["features"][big, 80:], hc.encode_scale(hc.svd_features(v, 1), 1), atol=1e-5
    )


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="square grey patches"):
        hc.dct_features(np.zeros((2, 15, 14)), 0)
    with pytest.raises(ValueError, match="scale must be 0"):
        hc.svd_features(np.zeros((2, 15, 15)), 2)
    with pytest.raises(ValueError, match="val_fraction"):
        pt.split_sources(4, 1.0, 0)


def test_no_cap_keeps_every_balanced_edge(manifest, tmp_path):
    # n_per_image=None: min(n_strong, n_weak) locations per scale and image, as the release
    from defocus.io.image import read_image
    from defocus.io.manifest import read_manifest

    f = pt.sample_patches(manifest, tmp_path / "all.h5", n_per_image=None, seed=0)
    expected = 0
    for path in read_manifest(manifest)["image"]:
        smap = pt.edge_scales(read_image(path), pt.CANNY_TRAIN["weak"], pt.CANNY_TRAIN["strong"])
        expected += 2 * min(int(np.sum(smap == 0)), int(np.sum(smap == 1))) * 11
    with h5py.File(f) as h5:
        assert h5["label"].shape[0] == expected > 0
