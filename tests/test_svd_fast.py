"""The compiled svd map kernel against the batched-LAPACK route it replaced (kept here as
the reference): raw and normalised beta_1 maps agree to float32 rounding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from defocus.methods.base import minmax_normalise
from defocus.methods.classic import svd as svd_mod
from defocus.methods.classic._common import grid_to_full, to_gray
from defocus.methods.registry import get_method


def reference_raw(image: np.ndarray, w: int, k: int, stride: int = 1) -> np.ndarray:
    """beta_1 map by stacked Gram eigenvalues (np.linalg.eigvalsh), row chunk by row chunk."""
    g = to_gray(image)
    before, after = w // 2, w - 1 - w // 2
    padded = cv2.copyMakeBorder(g, before, after, before, after, cv2.BORDER_REFLECT_101)
    windows = sliding_window_view(padded, (w, w))[::stride, ::stride]
    out = np.empty(windows.shape[:2], dtype=np.float32)
    step = max(1, 8192 // max(1, windows.shape[1]))
    for y0 in range(0, windows.shape[0], step):
        out[y0 : y0 + step] = svd_mod.singular_value_ratio(windows[y0 : y0 + step], k)
    if stride > 1:
        out = grid_to_full(out, stride, g.shape)
    return out


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """A photo-like test image: smooth shading, texture, an edge, a blurred half."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = 90 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + 40 * (xx > w // 3)
    img = np.clip(base[..., None] + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    img[:, w // 2 :] = cv2.GaussianBlur(img, (0, 0), 2.5)[:, w // 2 :]
    return img


@pytest.mark.parametrize(
    ("shape", "window", "k", "stride"),
    [
        ((47, 150), 20, 3, 1),  # the author's window; width not a multiple of the 64 lanes
        ((33, 70), 11, 1, 1),
        ((25, 19), 7, 4, 1),  # narrower than one lane group
        ((40, 90), 20, 3, 3),
        ((21, 30), 2, 1, 1),
        ((21, 30), 5, 5, 2),
    ],
)
def test_kernel_matches_lapack_route(shape, window, k, stride):
    img = textured(*shape, seed=sum(shape) + window)
    ref = reference_raw(img, window, k, stride)
    raw = get_method(f"svd@window={window},k={k},stride={stride},normalize=none").predict(img)
    assert raw.shape == ref.shape == shape
    np.testing.assert_allclose(raw, np.clip(ref, 0, 1), rtol=0, atol=1e-6)
    norm = get_method(f"svd@window={window},k={k},stride={stride}").predict(img)
    np.testing.assert_allclose(norm, minmax_normalise(ref), rtol=0, atol=2e-6)


def test_kernel_flat_and_rank_one_windows():
    # constant image: every window has rank one, beta_1 = 1; a dark and a zero image too
    for value in (0, 3, 200):
        img = np.full((23, 41, 3), value, np.uint8)
        raw = get_method("svd@normalize=none").predict(img)
        np.testing.assert_allclose(raw, reference_raw(img, 20, 3), atol=1e-6)
    # stripes: rank <= 2 windows
    img = np.zeros((30, 80, 3), np.uint8)
    img[:, ::4] = 255
    raw = get_method("svd@window=11,k=1,normalize=none").predict(img)
    np.testing.assert_allclose(raw, reference_raw(img, 11, 1), atol=1e-6)


def test_unconverged_windows_fall_back_to_lapack(monkeypatch):
    img = textured(26, 37, seed=1)
    kernel = svd_mod._ratio_kernel()

    def failing(padded, w, k, stride, out, bad):
        kernel(padded, w, k, stride, out, bad)
        bad[::5, ::3] = True
        out[bad] = 0.0

    monkeypatch.setattr(svd_mod, "_ratio_kernel", lambda: failing)
    raw = get_method("svd@normalize=none").predict(img)
    np.testing.assert_allclose(raw, reference_raw(img, 20, 3), atol=1e-6)
