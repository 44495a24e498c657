"""Tests of defocus.evaluate.metrics, .bootstrap and .continuous.

Expected values are computed by hand on two tiny images (arithmetic in the comments) or by
an independent implementation (scikit-learn's ``precision_recall_curve``, a brute-force
threshold loop, a naive bootstrap loop).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve

from defocus.evaluate.bootstrap import (
    bootstrap_f_beta,
    bootstrap_mean,
    f_beta_samples,
)
from defocus.evaluate.continuous import (
    RTF_PROTOCOL,
    continuous_errors,
    crop_to_common,
    rtf_normalise,
)
from defocus.evaluate.metrics import (
    BinaryEvaluator,
    Counts,
    binarise_gt,
    f_beta,
    quantise,
    summarise,
    thresholds,
)

# --------------------------------------------------------------------------------------
# Two hand-made images. q = max{k : map >= k/255}.
#
# A (2x2): map [[.9, .2], [.3, .1]], GT [[1, 0], [1, 0]]
#   q: .9 -> 229, .3 -> 76, .2 -> 51 (exactly 51/255), .1 -> 25; positives .9 and .3
#   k 0..25    all four         TP2 FP2 FN0  P 1/2 R 1   F = 1.3*.5/(.15+1)  = 13/23
#   k 26..51   .9 .3 .2         TP2 FP1 FN0  P 2/3 R 1   F = 1.3*2/3/(.2+1)  = 13/18
#   k 52..76   .9 .3            TP2 FP0 FN0  P 1   R 1   F = 1
#   k 77..229  .9               TP1 FP0 FN1  P 1   R 1/2 F = 1.3*.5/(.3+.5) = 13/16
#   k 230..255 none             TP0 FP0 FN2  P 0/0=0 R 0 F = 0
#   max F = 1; MAE = (.1+.2+.7+.1)/4 = .275
#   adaptive, on the in-focus map 1-map = [.1 .8 .7 .9]: t = min(2*.625, 1) = 1 -> no pixel
#     has 1-map > 1, all four blurred: TP2 FP2 -> P 1/2 R 1 -> F 13/23
#   fixed .5 -> {.9}: TP1 FP0 FN1 TN2: acc 3/4, IoU 1/2, P 1, R 1/2
# B (1x4): map [1, .2, .2, 0], GT [0, 1, 1, 0]
#   q: 255, 51, 51, 0; positives the two .2
#   k 0        all four         TP2 FP2 FN0  P 1/2 R 1   F 13/23
#   k 1..51    1 .2 .2          TP2 FP1 FN0  P 2/3 R 1   F 13/18
#   k 52..255  1                TP0 FP1 FN2  P 0   R 0   F 0
#   max F = 13/18; MAE = (1+.8+.8+0)/4 = .65
#   adaptive, 1-map = [0 .8 .8 1]: t = min(2*.65, 1) = 1 -> no pixel has 1-map > 1: all
#     blurred: TP2 FP2 FN0 -> P 1/2 R 1 -> F 13/23
#   fixed .5 -> {1}: TP0 FP1 FN2 TN1: acc 1/4, IoU 0, P 0, R 0
# --------------------------------------------------------------------------------------
MAP_A = np.array([[0.9, 0.2], [0.3, 0.1]], np.float32)
GT_A = np.array([[1, 0], [1, 0]], bool)
MAP_B = np.array([[1.0, 0.2, 0.2, 0.0]], np.float32)
GT_B = np.array([[0, 1, 1, 0]], bool)

# threshold index ranges and the per-range value of each dataset curve
RANGES = [(0, 0), (1, 25), (26, 51), (52, 76), (77, 229), (230, 255)]
# mode "image": P, R averaged over A and B per range:
#   k 0: (1/2,1),(1/2,1) -> P 1/2, R 1 -> 13/23
#   k 1..25: (1/2,1),(2/3,1) -> P 7/12, R 1 -> 1.3*7/12/(.3*7/12+1) = 91/141
#   k 26..51: (2/3,1),(2/3,1) -> 13/18
#   k 52..76: (1,1),(0,0) -> P 1/2, R 1/2 -> 1/2
#   k 77..229: (1,1/2),(0,0) -> P 1/2, R 1/4 -> 1.3*.125/(.15+.25) = 13/32
#   k 230..255: 0
F_IMAGE = [13 / 23, 91 / 141, 13 / 18, 1 / 2, 13 / 32, 0.0]
P_IMAGE = [1 / 2, 7 / 12, 2 / 3, 1 / 2, 1 / 2, 0.0]
R_IMAGE = [1.0, 1.0, 1.0, 1 / 2, 1 / 4, 0.0]
# mode "pooled": TP/FP/FN summed over A and B:
#   k 0: 4/4/0 -> P 1/2 R 1 -> 13/23;  k 1..25: 4/3/0 -> P 4/7 R 1 -> 5.2/8.2 = 26/41
#   k 26..51: 4/2/0 -> P 2/3 R 1 -> 13/18;  k 52..76: 2/1/2 -> P 2/3 R 1/2 -> .4333/.7 = 13/21
#   k 77..229: 1/1/3 -> P 1/2 R 1/4 -> 13/32;  k 230..255: 0/1/4 -> 0
F_POOLED = [13 / 23, 26 / 41, 13 / 18, 13 / 21, 13 / 32, 0.0]
# mode "image_maxf": F curve = mean of per-image F curves:
#   k 0: 13/23; 1..25: (13/23+13/18)/2; 26..51: 13/18; 52..76: (1+0)/2; 77..229: 13/32; 0
F_MAXF_CURVE = [13 / 23, (13 / 23 + 13 / 18) / 2, 13 / 18, 1 / 2, 13 / 32, 0.0]


def _expand(values):
    out = np.empty(256)
    for (lo, hi), v in zip(RANGES, values, strict=True):
        out[lo : hi + 1] = v
    return out


def _evaluator(**kw) -> BinaryEvaluator:
    ev = BinaryEvaluator(**kw)
    ev.step("A", MAP_A, GT_A)
    ev.step("B", MAP_B, GT_B)
    return ev


def test_per_image_hand_values():
    per_image, _ = _evaluator().results()
    a, b = per_image.iloc[0], per_image.iloc[1]
    assert list(per_image["id"]) == ["A", "B"]
    assert a.f_max == pytest.approx(1.0) and b.f_max == pytest.approx(13 / 18)
    assert a.mae == pytest.approx(0.275) and b.mae == pytest.approx(0.65)
    assert a.f_adaptive == pytest.approx(13 / 23) and b.f_adaptive == pytest.approx(13 / 23)
    assert a.threshold_adaptive == pytest.approx(1.0)
    assert not a.no_evidence and not b.no_evidence
    assert (a.accuracy, a.iou, a.precision, a.recall) == pytest.approx((0.75, 0.5, 1.0, 0.5))
    assert (b.accuracy, b.iou, b.precision, b.recall) == pytest.approx((0.25, 0.0, 0.0, 0.0))
    assert (a.tp, a.fp, a.fn, a.tn) == (1, 0, 1, 2)
    assert a.fraction_blurred_gt == 0.5 and b.fraction_blurred_gt == 0.5


def test_counts_hand_values():
    c = _evaluator().counts()
    assert c.tp.dtype == np.int64 and c.tp.shape == (2, 256)
    # image A: TP 2 up to k=76, 1 up to 229, then 0; FP 2 up to 25, 1 up to 51, then 0
    assert c.tp[0, [0, 76, 77, 229, 230, 255]].tolist() == [2, 2, 1, 1, 0, 0]
    assert c.fp[0, [0, 25, 26, 51, 52]].tolist() == [2, 2, 1, 1, 0]
    assert c.fn[0, [76, 77, 230]].tolist() == [0, 1, 2]
    # image B: map 1.0 stays positive at k = 255 (t = 1); map 0 only at k = 0
    assert c.fp[1, [0, 1, 51, 52, 255]].tolist() == [2, 1, 1, 1, 1]
    assert c.tp[1, [0, 51, 52]].tolist() == [2, 2, 0]


@pytest.mark.parametrize(
    ("mode", "f_curve", "f_scalar"),
    [
        ("image", F_IMAGE, 13 / 18),
        ("pooled", F_POOLED, 13 / 18),
        # mean of per-image max F: (1 + 13/18)/2 = 31/36
        ("image_maxf", F_MAXF_CURVE, 31 / 36),
    ],
)
def test_averaging_modes_hand_values(mode, f_curve, f_scalar):
    c = _evaluator().counts()
    p, r, f = summarise(c, mode, 0.3)
    np.testing.assert_allclose(f, _expand(f_curve), rtol=1e-12)
    if mode != "pooled":
        np.testing.assert_allclose(p, _expand(P_IMAGE), rtol=1e-12)
        np.testing.assert_allclose(r, _expand(R_IMAGE), rtol=1e-12)
    assert f_beta(c, mode) == pytest.approx(f_scalar, rel=1e-12)


def test_summary_hand_values():
    s = _evaluator().summary()
    # f_beta_mean: widths of RANGES are 1, 25, 26, 25, 153, 26 (sum 256)
    widths = [1, 25, 26, 25, 153, 26]
    mean_f = sum(w * f for w, f in zip(widths, F_IMAGE, strict=True)) / 256
    assert s["f_beta"] == pytest.approx(13 / 18)
    assert s["f_beta_mean"] == pytest.approx(mean_f)
    assert s["f_beta_adaptive"] == pytest.approx(13 / 23)
    assert s["mae"] == pytest.approx((0.275 + 0.65) / 2)
    assert s["accuracy"] == pytest.approx(0.5) and s["iou"] == pytest.approx(0.25)
    # pooled fixed-threshold counts: TP 1, FP 1, FN 3, TN 3 -> acc 4/8, IoU 1/5
    sp = _evaluator(averaging="pooled").summary()
    assert sp["accuracy"] == pytest.approx(0.5) and sp["iou"] == pytest.approx(0.2)


def test_adaptive_f_known_answer_either_positive_class():
    # 8 pixels, 6 blurred (map .9) and 2 sharp (map .1), a perfect but mostly-blurred map.
    # In-focus map 1-map: six .1, two .9; mean = (6*.1 + 2*.9)/8 = .3; t = .6 -> the two .9
    # pixels are in focus, the six others blurred: the GT exactly, F = 1 for either class.
    # (Thresholding the blur map itself at min(2*mean(map), 1) = min(2*.7, 1) = 1 marked no
    # pixel blurred: F 0, the bug this definition removes.)
    m = np.array([[0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1]], np.float32)
    gt = m > 0.5
    for positive in ("blurred", "sharp"):
        ev = BinaryEvaluator(positive=positive)
        ev.step("x", m, gt)
        row = ev.results()[0].iloc[0]
        assert row.threshold_adaptive == pytest.approx(0.6)
        assert row.f_adaptive == pytest.approx(1.0)
        assert row.f_max == pytest.approx(1.0)
    # one sharp pixel labelled blurred: in-focus map [.1]*6 + [.9, .3]; mean = 1.8/8 = .225,
    # t = .45 -> in focus {.9}; blurred-positive: TP 6 FP 1 FN 0 -> P 6/7 R 1
    # -> F = 1.3 * 6/7 / (.3 * 6/7 + 1) = 7.8/8.8 = 39/44
    m2 = m.copy()
    m2[0, 7] = 0.7
    ev = BinaryEvaluator()
    ev.step("y", m2, gt)
    assert ev.results()[0].iloc[0].f_adaptive == pytest.approx(39 / 44)
    # the all-blurred map (in-focus map 0, t = 0: no pixel has 1-map > 0) stays all blurred:
    # its adaptive F equals its F at every threshold, P = blurred fraction 6/8, R = 1
    ev = BinaryEvaluator()
    ev.step("all", np.ones_like(m), gt)
    p_ = 6 / 8
    assert ev.results()[0].iloc[0].f_adaptive == pytest.approx(1.3 * p_ / (0.3 * p_ + 1))


def test_constant_map_is_flagged_no_evidence():
    ev = BinaryEvaluator()
    ev.step("flat", np.full((2, 2), 0.5, np.float32), np.array([[1, 0], [1, 1]], bool))
    ev.step("ramp", np.array([[0.2, 0.4], [0.6, 0.8]], np.float32), np.eye(2, dtype=bool))
    assert ev.results()[0]["no_evidence"].tolist() == [True, False]


def test_results_curves_keys():
    _, curves = _evaluator().results()
    assert set(curves) >= {"thresholds", "precision", "recall", "f", "tp", "fp", "fn", "ids"}
    assert curves["thresholds"][0] == 0 and curves["thresholds"][-1] == 1
    assert curves["ids"].tolist() == ["A", "B"]


def test_zero_over_zero():
    # GT without any blurred pixel: TP = 0 and TP+FN = 0 everywhere -> R = 0, P = 0, F = 0
    ev = BinaryEvaluator()
    ev.step("sharp_only", np.array([[0.7, 0.0]], np.float32), np.zeros((1, 2), bool))
    # all-zero map: predicted positive only at k = 0, so P at k >= 1 is 0/0 -> 0
    ev.step("zero_map", np.zeros((1, 2), np.float32), np.array([[True, False]]))
    per_image, _ = ev.results()
    c = ev.counts()
    p, r, f = c.per_image()
    assert np.all(p[0] == 0) and np.all(r[0] == 0) and np.all(f[0] == 0)
    assert p[1, 0] == 0.5 and r[1, 0] == 1.0 and np.all(p[1, 1:] == 0) and np.all(r[1, 1:] == 0)
    assert per_image["f_max"].tolist() == pytest.approx([0.0, 13 / 23])
    assert per_image["iou"].tolist() == [0.0, 0.0]  # 0/0 IoU counted as 0, as P and R


def test_quantise_matches_brute_force_threshold_test():
    rng = np.random.default_rng(1)
    t = thresholds(256)
    m = np.concatenate(
        [
            rng.random(20000, dtype=np.float32),
            t,  # exactly on every threshold
            np.nextafter(t, np.float32(-1)),  # one float32 ulp below
            np.nextafter(t, np.float32(2)),  # one ulp above
            np.arange(256, dtype=np.float32) / np.float32(255),  # uint8 PNG / 255
        ]
    )
    m = np.clip(m, 0, 1).astype(np.float32)
    for n in (256, 21, 2, 1000):
        tn = thresholds(n)
        brute = (m[:, None] >= tn[None, :]).sum(axis=1) - 1
        np.testing.assert_array_equal(quantise(m, n), brute)
    assert quantise(m).dtype == np.uint8


def test_threshold_edge_cases():
    t = thresholds(256)
    # a map value exactly on t_k counts as positive at t_k; one ulp below does not
    for k in (1, 51, 128, 254):
        assert quantise(np.array([t[k]]))[0] == k
        assert quantise(np.array([np.nextafter(t[k], np.float32(0))]))[0] == k - 1
    # uint8 value v / 255 -> index v for every v
    v = np.arange(256)
    np.testing.assert_array_equal(quantise(v.astype(np.float32) / np.float32(255)), v)
    # map = 1 is positive at every threshold including t = 1; map = 0 only at t = 0
    assert quantise(np.array([1.0]))[0] == 255 and quantise(np.array([0.0]))[0] == 0
    # n = 21: float32(7/20) lies below 7/20 exactly, yet must count as >= t_7
    m = np.float32(7 / 20)
    assert Fraction(float(m)) < Fraction(7, 20)
    assert np.floor(np.float64(m) * 20) == 6  # the naive quantisation would be wrong
    assert quantise(np.array([m]), 21)[0] == 7


def test_n_thresholds_21():
    ev = _evaluator(n_thresholds=21)
    c = ev.counts()
    assert c.tp.shape == (2, 21)
    # t = k/20. Image A at t = 0.2 (k = 4): {.9, .3, .2} -> TP2 FP1; at t = 0.25 (k = 5): {.9, .3}
    assert (c.tp[0, 4], c.fp[0, 4], c.tp[0, 5], c.fp[0, 5]) == (2, 1, 2, 0)


def test_sklearn_agreement_single_image_and_pooled():
    rng = np.random.default_rng(2)
    maps = [rng.integers(0, 256, size=(12, 15)).astype(np.float32) / np.float32(255)]
    maps.append(rng.integers(0, 256, size=(9, 7)).astype(np.float32) / np.float32(255))
    gts = [rng.random(m.shape) < 0.4 for m in maps]
    ev = BinaryEvaluator(averaging="pooled")
    for i, (m, g) in enumerate(zip(maps, gts, strict=True)):
        ev.step(str(i), m, g)
    c = ev.counts()

    def check(p_ours, r_ours, scores, labels):
        p_sk, r_sk, thr = precision_recall_curve(labels, scores)
        k = np.rint(thr * 255).astype(int)  # sklearn thresholds are the score values
        np.testing.assert_allclose(p_ours[k], p_sk[:-1], rtol=1e-12)
        np.testing.assert_allclose(r_ours[k], r_sk[:-1], rtol=1e-12)

    p_i, r_i, _ = c.per_image()
    check(p_i[0], r_i[0], maps[0].ravel(), gts[0].ravel())
    p, r, _ = summarise(c, "pooled")
    check(p, r, np.concatenate([m.ravel() for m in maps]), np.concatenate([g.ravel() for g in gts]))


def test_positive_sharp_equals_flipped_inputs():
    rng = np.random.default_rng(3)
    maps = [rng.random((6, 5)).astype(np.float32) for _ in range(3)]
    gts = [rng.random((6, 5)) < 0.5 for _ in range(3)]
    sharp = BinaryEvaluator(positive="sharp")
    flipped = BinaryEvaluator(positive="blurred")
    for i, (m, g) in enumerate(zip(maps, gts, strict=True)):
        sharp.step(str(i), m, g)
        flipped.step(str(i), np.float32(1) - m, ~g)
    df_s, c_s = sharp.results()
    df_f, c_f = flipped.results()
    # fraction_blurred_gt describes the GT before the flip, so it differs by design; the
    # adaptive binarisation is always made on the in-focus map, and Eq. 13 on the blur map,
    # so they do not flip either
    adaptive = {"fraction_blurred_gt", "f_adaptive", "threshold_adaptive", "accuracy_eq13"}
    cols = [c for c in df_s.columns if c not in adaptive]
    assert df_s[cols].equals(df_f[cols])
    for k in ("precision", "recall", "f", "tp", "fp", "fn"):
        np.testing.assert_array_equal(c_s[k], c_f[k])
    # the same pixels are called in focus whichever class is positive: the threshold is the
    # same, and with positive = sharp the in-focus map is the map the class is scored on
    blurred = BinaryEvaluator(positive="blurred")
    for i, (m, g) in enumerate(zip(maps, gts, strict=True)):
        blurred.step(str(i), m, g)
    df_b, _ = blurred.results()
    np.testing.assert_allclose(df_s["threshold_adaptive"], df_b["threshold_adaptive"])
    for i, (m, g) in enumerate(zip(maps, gts, strict=True)):
        t = df_s["threshold_adaptive"][i]
        pred_sharp = (1.0 - m.astype(np.float64)) > t
        tp = np.count_nonzero(pred_sharp & ~g)
        p_, r_ = tp / max(pred_sharp.sum(), 1), tp / max((~g).sum(), 1)
        f_ = 1.3 * p_ * r_ / (0.3 * p_ + r_) if p_ + r_ else 0.0
        assert df_s["f_adaptive"][i] == pytest.approx(f_)
    np.testing.assert_allclose(df_s["fraction_blurred_gt"], 1 - df_f["fraction_blurred_gt"])


def test_gt_binarisation():
    assert binarise_gt(np.array([0, 127, 128, 255], np.uint8)).tolist() == [0, 0, 1, 1]
    assert binarise_gt(np.array([0.49, 0.5], np.float32)).tolist() == [0, 1]
    assert binarise_gt(np.array([0, 32767, 32768], np.uint16)).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="dtype"):
        binarise_gt(np.array([0, 1], np.int32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarise_gt(np.array([0.0, 2.0]))


def test_step_validation():
    ev = BinaryEvaluator()
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        ev.step("x", np.zeros((2, 3), np.float32), np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        ev.step("x", np.full((2, 2), 1.5, np.float32), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="float map"):
        ev.step("x", np.zeros((2, 2), np.uint8), np.zeros((2, 2), bool))
    ev.step("x", np.zeros((2, 2), np.float32), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="already"):
        ev.step("x", np.zeros((2, 2), np.float32), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="averaging"):
        BinaryEvaluator(averaging="mean")
    with pytest.raises(ValueError, match="positive"):
        BinaryEvaluator(positive="focus")
    with pytest.raises(ValueError, match="no images"):
        BinaryEvaluator().results()
    with pytest.raises(ValueError, match="shape"):
        Counts(
            np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64), np.zeros((2, 4)), thresholds(3)
        )


# -- bootstrap ----------------------------------------------------------------------------


def _random_counts(n_images=25, seed=4) -> Counts:
    rng = np.random.default_rng(seed)
    ev = BinaryEvaluator()
    for i in range(n_images):
        gt = rng.random((10, 10)) < rng.uniform(0.3, 0.8)
        m = np.clip(0.5 * gt + 0.6 * rng.random((10, 10)), 0, 1).astype(np.float32)
        ev.step(str(i), m, gt)
    return ev.counts()


def test_bootstrap_contains_estimate_and_is_reproducible():
    c = _random_counts()
    ci = bootstrap_f_beta(c, n_resamples=300, seed=7)
    assert ci.estimate == pytest.approx(f_beta(c))
    assert ci.low <= ci.estimate <= ci.high and ci.low < ci.high
    assert bootstrap_f_beta(c, n_resamples=300, seed=7) == ci
    assert bootstrap_f_beta(c, n_resamples=300, seed=8) != ci
    mae = np.random.default_rng(0).random(25)
    m = bootstrap_mean(mae, n_resamples=300, seed=7)
    assert m.estimate == pytest.approx(mae.mean())
    assert m.low <= m.estimate <= m.high
    assert bootstrap_mean(mae, n_resamples=300, seed=7) == m


@pytest.mark.parametrize("mode", ["image", "pooled", "image_maxf"])
def test_bootstrap_vectorised_equals_naive_loop(mode):
    c = _random_counts(n_images=9)
    got = f_beta_samples(c, mode, n_resamples=20, seed=11)
    # naive: the same index draws, one resample at a time through summarise / f_beta
    idx = np.random.default_rng(11).integers(0, 9, size=(20, 9))
    want = [f_beta(Counts(c.tp[i], c.fp[i], c.fn[i], c.thresholds), mode) for i in idx]
    np.testing.assert_allclose(got, want, rtol=1e-12)


# -- continuous ---------------------------------------------------------------------------


def test_continuous_errors_hand_values():
    pred = np.array([[1.0, 2.0], [4.0, 0.0]])
    gt = np.array([[1.0, 3.0], [3.0, 2.0]])
    # diffs 0, -1, 1, -2 -> MSE (0+1+1+4)/4 = 1.5, MAE (0+1+1+2)/4 = 1
    assert continuous_errors(pred, gt) == pytest.approx({"mse": 1.5, "mae": 1.0})
    # RTF: clip to [0, 3.275] -> pred 4 -> 3.275; diffs 0, -1, .275, -2, scaled by 1/3.275
    d = np.array([0, -1, 0.275, -2]) / 3.275
    got = continuous_errors(pred, gt, **RTF_PROTOCOL)
    assert got == pytest.approx({"mse": np.mean(d**2), "mae": np.mean(np.abs(d))})
    np.testing.assert_allclose(rtf_normalise([-1.0, 3.275, 10.0]), [0.0, 1.0, 1.0])


def test_continuous_crop_and_mismatch():
    a = np.arange(20.0).reshape(4, 5)
    b = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(2, 3\)"):
        continuous_errors(a, b)
    ca, cb = crop_to_common(a, b)
    assert ca.shape == cb.shape == (2, 3)
    np.testing.assert_array_equal(ca, a[1:3, 1:4])
    # cropped a is [[6,7,8],[11,12,13]]: MAE = 57/6
    assert continuous_errors(a, b, crop=True)["mae"] == pytest.approx(57 / 6)
