"""Tests of the classic baselines: svd, lbp, hifst, zhuo_sim, ss.

Each method is checked on a real photograph (scikit-image's ``chelsea``, cropped to an odd
97x129) whose right part is blurred with a Gaussian of sigma 2.5: the mean blur map over the
blurred part must exceed the mean over the sharp part by a stated margin. The margins were
set below the values measured when the tests were written (svd 0.47 with the author's 20x20
window and per-image min-max, lbp 0.89, hifst 0.63, zhuo_sim 0.33, ss 0.665), leaving room
for library-version noise. Each method's central
quantity is also checked on a case with a known answer.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from defocus.methods.classic import REGISTRY
from defocus.methods.registry import get_method

NAMES = ["svd", "lbp", "hifst", "zhuo_sim", "ss"]
# blurred-part mean minus sharp-part mean, at least (see the module docstring)
MARGIN = {"svd": 0.3, "lbp": 0.3, "hifst": 0.3, "zhuo_sim": 0.15, "ss": 0.3}
SPLIT = 64  # columns >= SPLIT are blurred in conftest.half_blurred (HALF_SPLIT)


def test_registered():
    assert set(NAMES) <= set(REGISTRY)
    for name in NAMES:
        m = get_method(name)
        assert m.name == name
        assert m.citation
        assert m.defaults


@pytest.mark.parametrize("name", NAMES)
def test_map_contract_and_margin(name, half_blurred):
    m = get_method(name).predict(half_blurred)
    assert m.shape == half_blurred.shape[:2]
    assert m.dtype == np.float32
    assert np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0
    # a band of 8 px either side of the seam is left out: windows straddle it
    sharp, blurred = m[:, : SPLIT - 8].mean(), m[:, SPLIT + 8 :].mean()
    assert blurred - sharp > MARGIN[name], (name, sharp, blurred)


@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_input(name):
    with pytest.raises(ValueError, match="RGB uint8"):
        get_method(name).predict(np.zeros((32, 32), dtype=np.float32))


def test_unknown_parameter():
    with pytest.raises(ValueError, match="unknown parameter"):
        get_method("hifst@nope=1")


# -- SVD -------------------------------------------------------------------------------
def test_svd_rank_one_ratio_is_one():
    from defocus.methods.classic.svd import singular_value_ratio

    rng = np.random.default_rng(0)
    u, v = rng.random(11), rng.random(11)
    assert singular_value_ratio(np.outer(u, v)[None], k=1)[0] == pytest.approx(1.0, abs=1e-5)
    # identity: 11 equal singular values, so the top 3 hold 3/11
    assert singular_value_ratio(np.eye(11)[None], k=3)[0] == pytest.approx(3 / 11, abs=1e-5)
    with pytest.raises(ValueError, match="k must be"):
        singular_value_ratio(np.eye(5)[None], k=6)


def test_svd_bad_parameters():
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="window must be"):
        get_method("svd@window=1").predict(img)
    with pytest.raises(ValueError, match="k must be"):
        get_method("svd@window=4,k=5").predict(img)
    with pytest.raises(ValueError, match="normalize"):
        get_method("svd@normalize=zscore").predict(img)


@pytest.mark.parametrize("window", [20, 11])
def test_svd_map_is_beta1_of_the_authors_window(window):
    # raw map (normalize=none) at a pixel = beta_1 of the window the author's code takes:
    # rows/cols i - w//2 .. i + w - 1 - w//2 of the mirror-padded (reflect-101) grey image
    from defocus.methods.classic._common import to_gray

    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (30, 34, 3), dtype=np.uint8)
    raw = get_method(f"svd@window={window},normalize=none").predict(img)
    g = to_gray(img)
    b, a = window // 2, window - 1 - window // 2
    pad = np.pad(g, ((b, a), (b, a)), mode="reflect")  # numpy "reflect" = reflect-101
    for i, j in ((0, 0), (7, 20), (29, 33), (15, 3)):
        patch = pad[i : i + window, j : j + window]
        ref = np.linalg.svd(patch.astype(np.float64), compute_uv=False)
        assert raw[i, j] == pytest.approx(ref[:3].sum() / ref.sum(), abs=1e-5)
    # the default (author's code) is the same map min-max normalised per image
    norm = get_method(f"svd@window={window}").predict(img)
    np.testing.assert_allclose(norm, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-5)


# -- LBP -------------------------------------------------------------------------------
def test_lbp_constant_patch_is_flat():
    from defocus.methods.classic.lbp import lbp_riu2_codes, lbp_sharpness

    flat = np.full((21, 21), 128.0)
    assert (lbp_riu2_codes(flat, 0.016 * 255) == 0).all()
    assert lbp_sharpness(flat, 11, 0.016 * 255).max() == 0.0


def test_lbp_codes_known_pattern():
    from defocus.methods.classic.lbp import lbp_riu2_codes

    # a bright ring around a dark centre: all 8 bits set -> riu2 code 8 (a "sharp" code)
    g = np.full((3, 3), 200.0)
    g[1, 1] = 0.0
    assert lbp_riu2_codes(g, 4.08)[1, 1] == 8
    # checkerboard of +-: 8 transitions -> non-uniform -> 9
    c = np.array([[0, 200, 0], [200, 100, 200], [0, 200, 0]], dtype=float)
    assert lbp_riu2_codes(c, 4.08)[1, 1] == 9


def test_lbp_bad_thresholds():
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="t_m2 < t_m1"):
        get_method("lbp@t_m1=0.01,t_m2=0.3").predict(img)


# -- HiFST -----------------------------------------------------------------------------
def _step(sigma: float, n: int = 63) -> np.ndarray:
    s = np.zeros((n, n), dtype=np.float32)
    s[:, n // 2 :] = 255.0
    return cv2.GaussianBlur(s, (0, 0), sigma) if sigma > 0 else s


def test_hifst_high_frequency_feature_sharp_vs_blurred():
    from defocus.methods.classic.hifst import gradient_magnitude, sorted_high_frequency

    # a diagonal step: its gradient ridge spreads over the whole DCT plane (a vertical step
    # would only excite the first DCT row, which holds no high-band coefficient but one)
    n = 63
    yy, xx = np.mgrid[:n, :n]
    feats = []
    for sigma in (0.0, 3.0):
        s = np.where(xx > yy, 255.0, 0.0).astype(np.float32)
        if sigma:
            s = cv2.GaussianBlur(s, (0, 0), sigma)
        g, _ = gradient_magnitude(np.repeat(s[..., None], 3, axis=2), 0.5)
        c = n // 2
        sizes = (7, 15, 31)
        blocks = [g[None, c - m // 2 : c + m // 2 + 1, c - m // 2 : c + m // 2 + 1] for m in sizes]
        feats.append(sorted_high_frequency(blocks, sum(sizes) + 1)[0])
    sharp, blurred = feats
    # measured: mean 0.27 (sharp) vs 1.3e-6 (sigma 3); ask for a 100x gap
    assert sharp.mean() > 100 * blurred.mean()
    assert (np.diff(sharp) >= 0).all()  # sorted ascending


def test_hifst_dct_matrix_orthonormal_and_band():
    from defocus.methods.classic.hifst import dct_matrix, high_frequency_mask

    c = dct_matrix(7)
    np.testing.assert_allclose(c @ c.T, np.eye(7), atol=1e-5)
    assert high_frequency_mask(7).sum() == 7 * 8 // 2
    assert not high_frequency_mask(7)[0, 0] and high_frequency_mask(7)[6, 6]


# -- Zhuo & Sim ------------------------------------------------------------------------
def test_zhuo_sim_formula_inverts_model():
    from defocus.methods.classic.zhuo_sim import sigma_from_ratio

    s1, s2, sigma = 1.0, 1.5, 2.0
    r = np.sqrt((sigma**2 + s2**2) / (sigma**2 + s1**2))
    assert sigma_from_ratio(np.array([r]), s1, s2)[0] == pytest.approx(sigma, rel=1e-9)
    assert np.isnan(sigma_from_ratio(np.array([0.9, 1.6]), s1, s2)).all()


def test_zhuo_sim_recovers_sigma_on_step_edge():
    step = np.zeros((48, 65), dtype=np.float32)
    step[:, 32:] = 1.0
    blurred = cv2.GaussianBlur(step, (0, 0), 2.0)
    rgb = np.repeat((blurred * 200 + 20).round().astype(np.uint8)[..., None], 3, axis=2)
    m = get_method("zhuo_sim")
    sparse = m.sparse_map(rgb)
    est = np.nanmedian(sparse[8:-8])
    assert est == pytest.approx(2.0, rel=0.10)
    raw = m.predict_raw(rgb)
    assert raw.shape == rgb.shape[:2] and raw.dtype == np.float32
    assert np.median(raw) == pytest.approx(2.0, rel=0.15)


# -- SS --------------------------------------------------------------------------------
def test_ss_spectral_residual_sharp_vs_blurred():
    from skimage import data

    from defocus.methods.classic.ss import spectral_residual

    # a real photograph next to its Gaussian-blurred copy, in one frame: the spectral residual
    # whitens the whole image, so only the response of one part relative to another counts
    # (a globally blurred image is whitened back to about the same response)
    g = cv2.resize(data.camera().astype(np.float64) / 255, (96, 96), interpolation=cv2.INTER_AREA)
    s = spectral_residual(np.concatenate([g, cv2.GaussianBlur(g, (0, 0), 2.5)], axis=1), 3)
    assert s.shape == (96, 192) and (s >= 0).all()
    # measured: ratio 1.69
    assert s[:, :96].mean() > 1.3 * s[:, 96:].mean()
    # a flat image has no residual structure: the response is constant
    flat = spectral_residual(np.full((40, 50), 0.4), 3, 2.0)
    assert np.ptp(flat) <= 1e-6 * flat.max()
    assert (spectral_residual(np.zeros((8, 8)), 3) == 0).all()


def test_ss_coarse_map_on_fixture(half_blurred):
    from defocus.methods.classic.ss import logistic_blur

    m = get_method("ss@refine=False")
    coarse = m.coarse_blur(half_blurred)
    assert coarse.shape == half_blurred.shape[:2] and coarse.dtype == np.float32
    assert 0 < coarse.min() and coarse.max() < 1  # a logistic, before any normalisation
    # measured: 0.31 (sharp) vs 0.70 (blurred)
    assert coarse[:, SPLIT + 8 :].mean() - coarse[:, : SPLIT - 8].mean() > 0.25
    # the logistic decreases: a stronger response is less blurred; constant -> 0.5
    b = logistic_blur(np.array([1e-3, 1e-2, 1e-1]))
    assert b[0] > 0.5 > b[2] and b[1] == pytest.approx(0.5)
    assert (logistic_blur(np.full(5, 3.0)) == 0.5).all()


def test_ss_affine_invariant_distance():
    from defocus.methods.classic.ss import affine_invariant_distance as d_ai

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2, 2))
    spd = x @ np.swapaxes(x, 1, 2) + 0.1 * np.eye(2)
    a, b = spd[:3], spd[3:]
    np.testing.assert_allclose(d_ai(a, a), 0.0, atol=1e-7)
    np.testing.assert_allclose(d_ai(a, b), d_ai(b, a), rtol=1e-9)
    # by hand: diag(1, 4) vs diag(2, 1) -> eigenvalues 2 and 1/4 -> sqrt(ln^2 2 + ln^2 4)
    hand = np.sqrt(np.log(2.0) ** 2 + np.log(4.0) ** 2)
    assert d_ai(np.diag([1.0, 4.0]), np.diag([2.0, 1.0])) == pytest.approx(hand, rel=1e-12)
    # affine invariance: d(M A M^T, M B M^T) = d(A, B) for an invertible M
    m = np.array([[2.0, 0.5], [-1.0, 3.0]])
    np.testing.assert_allclose(d_ai(m @ a @ m.T, m @ b @ m.T), d_ai(a, b), rtol=1e-8)
    # scaling one matrix by c moves every eigenvalue by c: d = sqrt(2) |ln c|
    assert d_ai(np.eye(2), 3.0 * np.eye(2)) == pytest.approx(np.sqrt(2) * np.log(3.0))
    with pytest.raises(ValueError, match="positive definite"):
        d_ai(np.diag([1.0, 0.0]), np.eye(2))


def test_ss_gradient_covariance_and_adjacency():
    from defocus.methods.classic.ss import (
        COVARIANCE_RIDGE,
        adjacent_pairs,
        gradient_covariances,
    )

    rng = np.random.default_rng(1)
    g = rng.random((12, 10)).astype(np.float32)
    labels = np.zeros((12, 10), dtype=np.int64)
    labels[:, 5:] = 1
    labels[8:, :] = 2
    cov = gradient_covariances(g, labels, 3)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    for k in range(3):
        sel = labels == k
        ref = np.cov(np.stack([gx[sel], gy[sel]]), bias=True) + COVARIANCE_RIDGE * np.eye(2)
        np.testing.assert_allclose(cov[k], ref, rtol=1e-4, atol=1e-6)
    # a linear ramp has a constant gradient: zero covariance, only the ridge is left
    ramp = np.tile(np.arange(10, dtype=np.float32), (12, 1))
    flat_cov = gradient_covariances(ramp, np.zeros((12, 10), np.int64), 1)[0]
    assert np.linalg.eigvalsh(flat_cov).min() > 0
    i, j = adjacent_pairs(labels)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2)]


def test_ss_update_is_a_convex_smoothing():
    import scipy.sparse as sp

    from defocus.methods.classic.ss import iterative_update, region_similarity

    rng = np.random.default_rng(2)
    n = 30
    i = np.arange(n - 1)
    pairs = (np.r_[i, 0], np.r_[i + 1, n - 1])  # a ring of regions
    x = rng.normal(size=(n, 2, 2))
    cov = x @ np.swapaxes(x, 1, 2) + 0.1 * np.eye(2)
    sim = region_similarity(rng.random((n, 3)), cov, pairs, 0.4, 0.1, 0.1)
    assert (sim != sim.T).nnz == 0 and sim.diagonal().max() == 0
    assert 0 < sim.data.min() and sim.data.max() <= 1
    np.testing.assert_allclose(iterative_update(np.full(n, 0.7), sim, 50), 0.7, rtol=1e-12)
    b0 = rng.random(n)
    b = iterative_update(b0, sim, 50)
    assert b0.min() - 1e-12 <= b.min() and b.max() <= b0.max() + 1e-12
    assert np.ptp(b) < np.ptp(b0)  # neighbours pull values together
    np.testing.assert_array_equal(iterative_update(b0, sim, 0), b0)
    # two regions with similarity s: coh = 1 / (1 + s), W swaps them
    s = 0.6
    two = sp.csr_matrix(np.array([[0.0, s], [s, 0.0]]))
    coh = 1 / (1 + s)
    one = iterative_update(np.array([1.0, 0.0]), two, 1)
    np.testing.assert_allclose(one, [coh, 1 - coh], rtol=1e-12)
    # a region without neighbours keeps its value
    lone = iterative_update(np.array([0.2, 0.9]), sp.csr_matrix((2, 2)), 5)
    np.testing.assert_allclose(lone, [0.2, 0.9])


def test_ss_flat_image_and_bad_parameters():
    flat = np.full((24, 30, 3), 90, dtype=np.uint8)
    m = get_method("ss").predict(flat)
    # no structure, no evidence: the map is undecided (0.5), not "all in focus"
    assert m.dtype == np.float32 and np.isfinite(m).all() and (m == 0.5).all()
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="beta"):
        get_method("ss@beta=1.5").predict(img)
    with pytest.raises(ValueError, match="sigma_g"):
        get_method("ss@sigma_g=0").predict(img)
    with pytest.raises(ValueError, match="max_side"):
        get_method("ss@max_side=4").predict(img)
