"""Tests of the classic baselines (issue 6): svd, lbp, hifst, zhuo_sim, ss.

Each method is checked on a real photograph (scikit-image's ``chelsea``, cropped to an odd
97x129) whose right part is blurred with a Gaussian of sigma 2.5: the mean blur map over the
blurred part must exceed the mean over the sharp part by a stated margin. The margins were
set below the values measured when the tests were written (svd 0.061, lbp 0.89, hifst 0.63,
zhuo_sim 0.33, ss 0.75), leaving room for library-version noise. Each method's central
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
MARGIN = {"svd": 0.03, "lbp": 0.3, "hifst": 0.3, "zhuo_sim": 0.15, "ss": 0.3}
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


def test_svd_bad_window():
    with pytest.raises(ValueError, match="odd integer"):
        get_method("svd@window=10").predict(np.zeros((16, 16, 3), np.uint8))


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
def test_ss_spectrum_residual_sharp_vs_blurred():
    from defocus.methods.classic.ss import log_spectrum_residual

    sharp = log_spectrum_residual(_step(0.0, 32)[None], 1.0)[0]
    blurred = log_spectrum_residual(_step(2.5, 32)[None], 1.0)[0]
    flat = log_spectrum_residual(np.full((1, 32, 32), 90.0), 1.0)[0]
    assert sharp > 2 * blurred > 0
    assert flat == pytest.approx(0.0, abs=1e-6)
