"""The joint weighted median (defocus.methods.weighted_median) is bitwise its reference
computation: per pixel, argsort of the window's float32 values and float32 cumulative weights
in that order (the per-pixel definition itself is checked in test_dhde_release.py)."""

import numpy as np
import pytest

from defocus.methods import weighted_median as wm
from defocus.methods.weighted_median import joint_weighted_median, weighted_median_once


def _reference_once(values, guide, r, sigma):
    """One pass, every pixel through the reference computation (float32 weights
    ``exp(-d2 / (2 sigma^2))`` with ``d2`` summed over channels; +inf, weight 0 outside)."""
    h, w = values.shape
    k = 2 * r + 1
    inv = -0.5 / float(sigma) ** 2
    vpad = np.pad(values.astype(np.float32), r, constant_values=np.inf)
    gpad = np.pad(guide, ((r, r), (r, r), (0, 0)), mode="edge")
    inside = np.pad(np.ones((h, w), bool), r, constant_values=False)
    vals = np.empty((h, w, k * k), np.float32)
    wts = np.empty((h, w, k * k), np.float32)
    for j, (dy, dx) in enumerate((dy, dx) for dy in range(k) for dx in range(k)):
        d2 = np.sum((gpad[dy : dy + h, dx : dx + w] - guide) ** 2, axis=2)
        wts[..., j] = np.exp(inv * d2) * inside[dy : dy + h, dx : dx + w]
        vals[..., j] = vpad[dy : dy + h, dx : dx + w]
    vals, wts = vals.reshape(-1, k * k), wts.reshape(-1, k * k)
    order = np.argsort(vals, axis=1)
    sv = np.take_along_axis(vals, order, axis=1)
    cw = np.cumsum(np.take_along_axis(wts, order, axis=1), axis=1)
    pos = np.sum(cw < 0.5 * cw[:, -1:], axis=1)
    return sv[np.arange(len(sv)), pos].reshape(h, w)


def _reference(values, guide, r=5, sigma=0.25, iterations=3):
    g = wm._normalised_guide(guide)
    out = np.asarray(values, np.float32)
    for _ in range(iterations):
        out = _reference_once(out, g, r, sigma)
    return out


def _cases():
    rng = np.random.default_rng(7)
    smooth = rng.random((37, 45)).astype(np.float32)
    colour = rng.random((37, 45, 3))
    # 11 sigma labels: ties in every window
    labels = (0.5 + 0.25 * rng.integers(0, 11, (37, 45))).astype(np.float32)
    # flat guide blocks: weights exactly 1, integer sums that can equal half the total
    blocks = np.kron(rng.random((4, 5, 3)), np.ones((10, 10, 1)))[:37, :45]
    signed = rng.choice(np.float32([-0.0, 0.0, -1.5, 2.0, 1e-30]), (23, 31))
    return {
        "continuous": (smooth, colour),
        "labels": (labels, colour),
        "flat_blocks": (labels, blocks),
        "continuous_flat_blocks": (smooth, blocks),
        "grey_guide": (smooth, rng.random((37, 45))),
        "signed_zeros": (signed, rng.random((23, 31, 3)).round(1)),
        "tiny_image": (smooth[:3, :4], colour[:3, :4]),
        "many_channels": (smooth[:17, :19], rng.random((17, 19, 9))),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_equals_the_reference_bitwise(name):
    values, guide = _cases()[name]
    got = joint_weighted_median(values, guide)
    assert got.dtype == np.float32
    assert got.tobytes() == _reference(values, guide).tobytes()


@pytest.mark.parametrize(("r", "sigma", "iterations"), [(0, 0.25, 2), (1, 0.1, 1), (2, 2.0, 4)])
def test_other_radii_sigmas_and_passes(r, sigma, iterations):
    values, guide = _cases()["labels"][0], _cases()["continuous"][1]
    got = joint_weighted_median(values, guide, r, sigma, iterations)
    assert got.tobytes() == _reference(values, guide, r, sigma, iterations).tobytes()


@pytest.mark.parametrize("block_rows", [1, 3, 8, 40])
def test_block_size_and_wavefront_do_not_change_the_map(block_rows):
    # blocks shorter than the radius make a pass wait several blocks for the previous one
    values, guide = _cases()["continuous_flat_blocks"]
    g = wm._normalised_guide(guide)
    got = wm._filter(values, g, 5, 0.25, 3, block_rows)
    assert got.tobytes() == _reference(values, guide).tobytes()
    once = weighted_median_once(values, g, 5, 0.25, chunk_rows=block_rows)
    assert once.tobytes() == _reference_once(values, g, 5, 0.25).tobytes()


def test_zero_passes_return_the_values_as_float32():
    values = np.arange(12.0).reshape(3, 4)
    got = joint_weighted_median(values, np.zeros((3, 4)), iterations=0)
    assert got.dtype == np.float32 and np.array_equal(got, values)


def test_uncertain_crossings_go_to_the_reference(monkeypatch):
    # flat guide: every weight is 1, so a 6 x 6 corner window's half (18) is reached exactly
    values = np.arange(36.0, dtype=np.float32).reshape(6, 6)
    calls = []
    original = wm._reference_rows

    def spy(vals, wts):
        calls.append(len(vals))
        return original(vals, wts)

    monkeypatch.setattr(wm, "_reference_rows", spy)
    got = joint_weighted_median(values, np.zeros((6, 6)), iterations=1)
    assert calls and sum(calls) == 36  # every window is the whole 6 x 6 image
    assert np.all(got == 17.0)  # the 18th smallest of 0..35 reaches half of 36


def test_value_keys_keep_order_and_bits():
    x = np.float32([-np.inf, -3.5, -1e-45, -0.0, 0.0, 1e-45, 1.0, 2.5e38, np.inf])
    keys = wm._value_keys(x)
    assert np.all(np.diff(keys.astype(object)) > 0)  # strictly increasing, -0 before +0
    assert wm._key_values(keys).tobytes() == x.tobytes()
    assert np.all(keys & np.uint64(0xFFFFFFFF) == 0)


@pytest.mark.parametrize("channels", [1, 3, 9])
def test_block_weights_are_the_reference_weights_bitwise(channels):
    rng = np.random.default_rng(channels)
    h, w, r = 13, 9, 5
    g = wm._normalised_guide(rng.random((h, w, channels)))
    k = 2 * r + 1
    gpad = np.pad(g, ((r, r), (r, r), (0, 0)), mode="edge")
    inside = np.pad(np.ones((h, w), bool), r, constant_values=False)
    ref = np.empty((k * k, h, w), np.float32)
    for j, (dy, dx) in enumerate((dy, dx) for dy in range(k) for dx in range(k)):
        d2 = np.sum((gpad[dy : dy + h, dx : dx + w] - g) ** 2, axis=2)
        ref[j] = np.exp(-8.0 * d2) * inside[dy : dy + h, dx : dx + w]
    planes = [np.ascontiguousarray(gpad[..., c]) for c in range(channels)]
    for y0, y1 in [(0, 4), (4, 8), (8, 13), (0, 13)]:
        got = wm._block_weights(planes, h, w, r, -8.0, y0, y1)
        assert got.tobytes() == ref[:, y0:y1].tobytes()
