"""DHDE steps as the authors' release runs them (zzangjinsun/DHDE_CVPR17): uint8 features,
the Eq. 6 filter of ProbJBF.m and the joint weighted median, each against its definition."""

import numpy as np
import pytest
import torch

from defocus.methods.dhde import DHDE, DHDENet, prob_joint_bilateral
from defocus.methods.weighted_median import joint_weighted_median


def test_hand_features_are_rounded_as_matlab_uint8():
    net = DHDENet(hand=(0,), use_cnn=False, quantise=True)
    f = torch.zeros(1, 120)
    # 255 f = 0.49 -> 0, 0.5 -> 1 (half away from zero), 2.5 -> 3, 300 -> 255, -3 -> 0
    f[0, :5] = torch.tensor([0.49, 0.5, 2.5, 300.0, -3.0]) / 255.0
    x = net.hand_input(f)
    assert x.shape == (1, 40)
    np.testing.assert_array_equal(x[0, :5].numpy(), [0.0, 1.0, 3.0, 255.0, 0.0])
    cont = DHDENet(hand=(0,), use_cnn=False, quantise=False).hand_input(f)
    np.testing.assert_allclose(cont[0, :5].numpy(), [0.49, 0.5, 2.5, 300.0, -3.0], rtol=1e-5)


def test_quantise_is_on_by_default_and_reaches_the_network():
    m = DHDE()
    assert m.params["quantise"] is True and m.build_net().quantise
    assert DHDE(quantise=False).build_net().quantise is False


def _direct_wmf(values, guide, r, sigma):
    """Per-pixel weighted median, written from the definition (lower weighted median)."""
    g = guide.astype(np.float64).reshape(guide.shape[0], guide.shape[1], -1)
    g = (g - g.min()) / (g.max() - g.min())
    h, w = values.shape
    out = np.empty((h, w))
    for y in range(h):
        for x in range(w):
            vs, ws = [], []
            for qy in range(max(0, y - r), min(h, y + r + 1)):
                for qx in range(max(0, x - r), min(w, x + r + 1)):
                    vs.append(values[qy, qx])
                    ws.append(np.exp(-np.sum((g[y, x] - g[qy, qx]) ** 2) / (2 * sigma**2)))
            vs, ws = np.array(vs), np.array(ws)
            total = ws.sum()
            for v in np.unique(vs):  # ascending
                if ws[vs <= v].sum() >= 0.5 * total - 1e-9:
                    out[y, x] = v
                    break
    return out


@pytest.mark.parametrize("channels", [1, 3])
def test_weighted_median_equals_the_direct_definition(channels):
    rng = np.random.default_rng(channels)
    values = rng.random((11, 14)).astype(np.float32)
    guide = rng.random((11, 14, channels))
    got = joint_weighted_median(values, guide, radius=2, sigma=0.3, iterations=1)
    ref = _direct_wmf(values, guide, 2, 0.3)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    # two passes = the one-pass filter applied twice
    twice = joint_weighted_median(values, guide, radius=2, sigma=0.3, iterations=2)
    np.testing.assert_allclose(twice, _direct_wmf(got, guide, 2, 0.3), atol=1e-6)


def test_weighted_median_is_deterministic_and_edge_preserving():
    rng = np.random.default_rng(0)
    # a step in the map that follows a step in the guide survives; an isolated outlier goes
    guide = np.zeros((24, 30, 3))
    guide[:, 15:] = 1.0
    values = np.where(guide[..., 0] > 0, 2.0, 0.5).astype(np.float32)
    values[5, 5] = 1.9
    noisy = values + rng.normal(0, 1e-3, values.shape).astype(np.float32)
    a = joint_weighted_median(noisy, guide)
    b = joint_weighted_median(noisy, guide)
    assert a.tobytes() == b.tobytes()
    assert np.abs(a[:, :15] - 0.5).max() < 0.01 and np.abs(a[:, 15:] - 2.0).max() < 0.01
    # uniform map: unchanged
    flat = np.full((9, 9), 1.25, np.float32)
    np.testing.assert_array_equal(joint_weighted_median(flat, rng.random((9, 9, 3))), flat)


def test_weighted_median_rejects_bad_input():
    with pytest.raises(ValueError, match="does not match"):
        joint_weighted_median(np.zeros((4, 4)), np.zeros((5, 4, 3)))
    with pytest.raises(ValueError, match="finite"):
        joint_weighted_median(np.full((4, 4), np.nan), np.zeros((4, 4)))


def _direct_prob_jbf(sparse, conf, guide, r, ss, sr, sc):
    """ProbJBF.m transcribed per pixel: square window, zero padding, each of the 3 guide
    channels compared with the centre's red value, weights summed over channels."""
    h, w = sparse.shape
    out = np.zeros((h, w))
    for y, x in zip(*np.nonzero(sparse), strict=True):
        num = den = 0.0
        for qy in range(y - r, y + r + 1):
            for qx in range(x - r, x + r + 1):
                if not (0 <= qy < h and 0 <= qx < w) or sparse[qy, qx] == 0:
                    continue
                wspt = np.exp(-((qy - y) ** 2 + (qx - x) ** 2) / (2 * ss**2))
                wprb = np.exp(-((1 - conf[qy, qx]) ** 2) / (2 * sc**2))
                for ch in range(3):
                    wrng = np.exp(-((guide[qy, qx, ch] - guide[y, x, 0]) ** 2) / (2 * sr**2))
                    num += wspt * wrng * wprb * sparse[qy, qx]
                    den += wspt * wrng * wprb
        out[y, x] = num / den
    return out


def test_release_jbf_equals_probjbf_m():
    rng = np.random.default_rng(3)
    h, w = 17, 19
    mask = rng.random((h, w)) < 0.3
    sparse = np.where(mask, rng.choice([0.5, 1.1, 2.0], (h, w)), 0).astype(np.float32)
    conf = np.where(mask, rng.random((h, w)), 0).astype(np.float32)
    guide = rng.random((h, w, 3)).astype(np.float32)
    # small sigmas so that the square corners and the red-channel distance matter
    got = prob_joint_bilateral(sparse, conf, mask, guide, 7, 2.0, 0.2, 0.5, impl="release")
    ref = _direct_prob_jbf(sparse, conf, guide, 3, 2.0, 0.2, 0.5)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    disc = prob_joint_bilateral(sparse, conf, mask, guide, 7, 2.0, 0.2, 0.5, impl="edges")
    assert np.abs(disc - ref).max() > 1e-3  # the OpenCV disc is a different filter


def test_matlab_canny_kernels():
    from defocus.features.canny import gaussian_kernels

    g, dg = gaussian_kernels(np.sqrt(2))
    assert len(g) == len(dg) == 13  # x = -ceil(4 sqrt 2) .. ceil(4 sqrt 2)
    assert g.sum() == pytest.approx(1.0) and g[6] == g.max()
    assert dg[dg > 0].sum() == pytest.approx(1.0) and dg[dg < 0].sum() == pytest.approx(-1.0)
    # MATLAB gradient: one-sided differences at the two ends, central inside
    raw = np.exp(-(np.arange(-6, 7) ** 2) / 4.0)
    raw /= raw.sum()
    assert np.sign(dg[0]) == np.sign(raw[1] - raw[0]) and dg[6] == pytest.approx(0.0)


def _nms_reference(dx, dy, mag, low):
    """cannyFindLocalMaxima transcribed with MATLAB's column-major linear indices."""
    m, n = mag.shape
    f = lambda a: a.ravel(order="F")  # noqa: E731
    ix, iy, mg = f(dx), f(dy), f(mag)
    out = np.zeros(m * n, bool)
    for i in range(m * n):
        idx = i + 1  # 1-based
        v = idx % m
        if v in (0, 1) or idx <= m or idx > (n - 1) * m:
            continue
        x, y = ix[i], iy[i]
        M = lambda j: mg[j - 1]  # noqa: E731
        if (y <= 0 and x > -y) or (y >= 0 and x < -y):
            d = abs(y / x)
            g1 = M(idx + m) * (1 - d) + M(idx + m - 1) * d
            g2 = M(idx - m) * (1 - d) + M(idx - m + 1) * d
        elif (x > 0 and -y >= x) or (x < 0 and -y <= x):
            d = abs(x / y)
            g1 = M(idx - 1) * (1 - d) + M(idx + m - 1) * d
            g2 = M(idx + 1) * (1 - d) + M(idx - m + 1) * d
        elif (x <= 0 and x > y) or (x >= 0 and x < y):
            d = abs(x / y)
            g1 = M(idx - 1) * (1 - d) + M(idx - m - 1) * d
            g2 = M(idx + 1) * (1 - d) + M(idx + m + 1) * d
        elif (y < 0 and x <= y) or (y > 0 and x >= y):
            d = abs(y / x)
            g1 = M(idx - m) * (1 - d) + M(idx - m - 1) * d
            g2 = M(idx + m) * (1 - d) + M(idx + m + 1) * d
        else:
            continue
        out[i] = mg[i] >= g1 and mg[i] >= g2 and mg[i] > low
    return out.reshape((m, n), order="F")


def test_matlab_canny_non_maximum_suppression_matches_the_transcription():
    from scipy import ndimage

    from defocus.features.canny import _local_maxima, smooth_gradient

    rng = np.random.default_rng(5)
    img = ndimage.gaussian_filter(rng.random((23, 27)), 1.5)
    dx, dy = smooth_gradient(img)
    mag = np.hypot(dx, dy)
    mag /= mag.max()
    np.testing.assert_array_equal(_local_maxima(dx, dy, mag, 0.1), _nms_reference(dx, dy, mag, 0.1))


def test_matlab_canny_finds_a_step_once_and_applies_hysteresis():
    from defocus.features.canny import matlab_canny

    img = np.zeros((30, 40))
    img[:, 20:] = 1.0
    # a step between two columns: both have the same magnitude and MATLAB's ">=" keeps both
    assert np.nonzero(matlab_canny(img, 0.1, 0.5).any(axis=0))[0].tolist() == [19, 20]
    img[:, 20] = 0.5  # a step centred on column 20: one column
    e = matlab_canny(img, 0.1, 0.5)
    assert np.nonzero(e.any(axis=0))[0].tolist() == [20]
    assert e[1:-1, 20].all() and not e[0].any() and not e[-1].any()  # border excluded
    # a faint step connected to nothing strong is dropped; joined to a strong one it stays
    faint = img * 0.2
    both = np.zeros((30, 80))
    both[:, 20:40] = 1.0
    both[:, 60:] = 0.15  # a weak, separate edge
    e2 = matlab_canny(both, 0.1, 0.5)
    assert e2[:, 15:45].any() and not e2[:, 55:65].any()
    assert matlab_canny(faint, 0.1, 0.5).any()  # alone, it is the strongest edge
    assert not matlab_canny(np.ones((10, 10)), 0.1, 0.5).any()


def test_matlab_canny_automatic_thresholds():
    from defocus.features.canny import automatic_thresholds, matlab_canny

    mag = np.linspace(0.0, 1.0, 1001).reshape(7, 143)
    # imhist(mag, 64): bins centred on k / 63, i.e. edges at (k - 0.5) / 63
    edges = np.concatenate([[-1.0], (np.arange(64) + 0.5) / 63.0])
    counts, _ = np.histogram(mag, bins=edges)
    first = next(k for k in range(64) if counts[: k + 1].sum() > 0.7 * mag.size)
    low, high = automatic_thresholds(mag)
    assert high == (first + 1) / 64 and low == pytest.approx(0.4 * high)
    assert 0.69 < high < 0.72
    # without thresholds, matlab_canny uses them: same edges as with them passed explicitly
    rng = np.random.default_rng(0)
    from scipy import ndimage

    img = ndimage.gaussian_filter(rng.random((40, 50)), 2.0)
    from defocus.features.canny import smooth_gradient

    m = np.hypot(*smooth_gradient(img))
    lo, hi = automatic_thresholds(m / m.max())
    np.testing.assert_array_equal(matlab_canny(img), matlab_canny(img, lo, hi))
    with pytest.raises(ValueError, match="low <= high"):
        matlab_canny(img, 0.3, None)
