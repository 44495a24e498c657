"""The dense (stride 1) HiFST path against slow references.

``reference_layers`` evaluates every block's DCT in float64 as matrix products; the dense
path (sliding-DCT recurrences, threshold-and-sort selection) must give the same sorted
layers up to float64 rounding and the same T. The float32 block products of the strided
path (``grid_layers`` with stride 1, the implementation before the dense path) differ from
both by their float32 rounding only.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from defocus.methods.base import minmax_normalise
from defocus.methods.classic._hifst_dense import (
    max_normalised_layer,
    reference_layers,
    sorted_layers_dense,
)
from defocus.methods.classic.hifst import HiFST, gradient_magnitude, grid_layers

SIZES = [7, 15, 31, 63]


def _photo(name: str, y: int, x: int, h: int, w: int) -> np.ndarray:
    from skimage import data

    img = cv2.resize(getattr(data, name)()[..., :3], (640, 427), interpolation=cv2.INTER_AREA)
    img[:, 320:] = cv2.GaussianBlur(img, (0, 0), 2.5)[:, 320:]
    return np.ascontiguousarray(img[y : y + h, x : x + w])


def _t_of(layers: np.ndarray) -> np.ndarray:
    """HiFST's T from (H, W, n) layers, as the strided path evaluates it."""
    lo = layers.min(axis=(0, 1), keepdims=True)
    hi = layers.max(axis=(0, 1), keepdims=True)
    norm = (layers - lo) / np.where(hi - lo > 1e-12, hi - lo, 1.0)
    return minmax_normalise(norm.max(axis=2))


@pytest.mark.parametrize(
    ("name", "y", "x", "h", "w"),
    [("astronaut", 150, 290, 36, 58), ("chelsea", 200, 300, 30, 41)],
)
def test_dense_layers_equal_float64_reference(name, y, x, h, w):
    crop = _photo(name, y, x, h, w)  # straddles the sharp / blurred boundary at x = 320
    grad, _ = gradient_magnitude(crop, 0.5)
    n = sum(SIZES) + 1
    ref = reference_layers(grad, SIZES, n)
    fast = sorted_layers_dense(grad, SIZES, n).transpose(1, 0, 2)
    span = ref.max(axis=(0, 1)) - ref.min(axis=(0, 1))
    assert (np.abs(fast.astype(np.float64) - ref) / span).max() < 1e-6
    assert (np.diff(fast, axis=2) >= 0).all()
    t = HiFST(stride=1).feature_map(crop)
    assert np.abs(t - _t_of(ref)).max() < 1e-6


def test_dense_path_within_float32_rounding_of_block_products():
    crop = _photo("coffee", 100, 290, 32, 44)
    grad, _ = gradient_magnitude(crop, 0.5)
    t32 = _t_of(grid_layers(grad, SIZES, 1, sum(SIZES) + 1))
    t = HiFST(stride=1).feature_map(crop)
    # measured 1.3e-3 on a 64x99 astronaut crop: the float32 products' own rounding
    assert np.abs(t - t32).max() < 1e-2


@pytest.mark.parametrize(("h", "w", "sizes"), [(1, 5, [3]), (9, 6, [3, 5]), (5, 13, [3, 7])])
def test_dense_small_images_and_other_block_sizes(h, w, sizes):
    rng = np.random.default_rng(h * 100 + w)
    grad = (rng.random((h, w)) * 50).astype(np.float32)
    n = sum(sizes) + 1
    ref = reference_layers(grad, sizes, n)
    fast = sorted_layers_dense(grad, sizes, n).transpose(1, 0, 2)
    np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-9)


def test_dense_flat_image_gives_zero_layers():
    grad = np.zeros((12, 10), dtype=np.float32)
    assert not sorted_layers_dense(grad, [3, 7], 11).any()
    t = HiFST(stride=1, block_sizes=[3, 7]).feature_map(np.zeros((12, 10, 3), np.uint8))
    assert t.shape == (12, 10) and np.isfinite(t).all()


def test_max_normalised_layer_matches_numpy():
    rng = np.random.default_rng(0)
    layers = rng.random((7, 9, 5)).astype(np.float32)
    layers[..., 2] = 0.25  # a constant layer divides by 1
    lo = layers.min(axis=(0, 1), keepdims=True)
    hi = layers.max(axis=(0, 1), keepdims=True)
    want = ((layers - lo) / np.where(hi - lo > 1e-12, hi - lo, 1.0)).max(axis=2)
    assert np.array_equal(max_normalised_layer(layers), want)


def test_dense_rejects_bad_layer_count():
    with pytest.raises(ValueError, match="n_layers"):
        sorted_layers_dense(np.zeros((4, 4), np.float32), [3], 7)
