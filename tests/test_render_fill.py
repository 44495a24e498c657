"""The generator's background fill (``fill="regionfill"``): MATLAB ``regionfill`` as a
Laplace (membrane) interpolation, and the render step that uses it.

References are closed-form harmonic functions (linear ramps, constants, the mean of four
neighbours) and, for the render step, quantities computed here without the renderer
(cv2.GaussianBlur, cumulative kernel taps), never a transcription of the renderer.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from defocus.render.layered import (
    FILL_EPS,
    FILLS,
    gaussian_kernel_1d,
    harmonic_fill,
    render_layered,
    render_reference,
)
from defocus.render.physics import coc_px, quantize_coc, sample_camera, sigma_from_coc


def _fill(image, hole):
    out = image.astype(np.float64).copy()
    out[hole] = harmonic_fill(out, hole)
    return out


def test_linear_ramp_reproduced_inside_a_hole():
    yy, xx = np.mgrid[0:20, 0:25].astype(np.float64)
    ramp = np.stack([0.3 * yy - 0.7 * xx + 2.0, 0.05 * xx + 0.1 * yy], axis=2)
    hole = np.zeros((20, 25), dtype=bool)
    hole[4:15, 3:9] = True
    hole[9:17, 12:22] = True  # a second, L-shaped component
    hole[6, 10:14] = True
    damaged = np.where(hole[..., None], 123.0, ramp)
    np.testing.assert_allclose(_fill(damaged, hole), ramp, atol=1e-10)


def test_constant_image_stays_constant_and_one_pixel_is_the_mean_of_four():
    img = np.full((9, 9, 1), 0.42)
    hole = np.zeros((9, 9), dtype=bool)
    hole[2:7, 1:8] = True
    img[hole] = 0.0
    np.testing.assert_allclose(_fill(img, hole), 0.42, atol=1e-12)
    rng = np.random.default_rng(0)
    img = rng.random((5, 5, 3))
    one = np.zeros((5, 5), dtype=bool)
    one[2, 3] = True
    expected = (img[1, 3] + img[3, 3] + img[2, 2] + img[2, 4]) / 4.0
    np.testing.assert_allclose(harmonic_fill(img, one)[0], expected, atol=1e-12)


def test_image_border_has_no_flux():
    # MATLAB's regionfill averages over the neighbours inside the image (3 on an edge, 2 in
    # a corner): a ramp along the border stays exact in a hole that touches it, and a hole
    # spanning all rows interpolates linearly between its left and right known columns
    yy, xx = np.mgrid[0:12, 0:16].astype(np.float64)
    ramp = (0.25 * yy + 1.0)[..., None]
    hole = np.zeros((12, 16), dtype=bool)
    hole[3:9, 0:5] = True  # touches the left border, along which the ramp runs
    np.testing.assert_allclose(_fill(np.where(hole[..., None], 0.0, ramp), hole), ramp, atol=1e-10)
    img = np.zeros((12, 16, 1))
    img[:, :4] = 1.0
    hole = np.zeros((12, 16), dtype=bool)
    hole[:, 4:11] = True  # known columns 3 (value 1) and 11 (value 0)
    expected = np.clip((11.0 - xx) / 8.0, 0.0, 1.0)[..., None]
    np.testing.assert_allclose(_fill(img, hole), expected, atol=1e-10)


def test_harmonic_fill_errors():
    with pytest.raises(ValueError, match="whole image"):
        harmonic_fill(np.zeros((3, 3, 1)), np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="must be"):
        harmonic_fill(np.zeros((3, 3)), np.zeros((3, 3), dtype=bool))
    assert harmonic_fill(np.zeros((3, 3, 2)), np.zeros((3, 3), dtype=bool)).shape == (0, 2)


@pytest.mark.parametrize("renderer", ["reference", "numpy", "torch"])
def test_front_layer_over_a_half_plane(renderer):
    # far half-plane in focus (colour A, columns < 20), near half-plane blurred (colour B).
    # Generator steps: hole = columns x >= 20 where the blurred far indicator is >= 1e-3;
    # it spans all rows (no flux at the top and bottom), so the filled colour and mask are
    # the linear ramps from column 19 (A, mask 1) to the first column past the hole (0, 0);
    # the near layer is then composited over them: out = ((1-m) t A + m B) / ((1-m) t + m)
    h, w, edge = 10, 40, 20
    coc = np.zeros((h, w))
    coc[:, edge:] = 9.0  # sigma (9 - 1) / 4 = 2 px
    depth = np.where(coc > 0, 1.0, 5.0)
    a, b = np.array([0.9, 0.2, 0.4]), np.array([0.1, 0.7, 0.3])
    img = np.where(coc[..., None] > 0, b, a).astype(np.float32)
    r = 7
    k = gaussian_kernel_1d(float(sigma_from_coc(9.0)), r)
    xx = np.arange(w)
    far_blur = np.array([k[max(0, x - edge + 1 + r) :].sum() if x >= edge else 1.0 for x in xx])
    far_blur[xx < edge - r] = 1.0
    hole = (xx >= edge) & (far_blur >= FILL_EPS)
    end = int(np.flatnonzero(hole)[-1]) + 1  # first known column after the hole
    t = np.clip((end - xx) / (end - (edge - 1)), 0.0, 1.0)
    t[xx < edge] = 1.0
    near = (coc > 0).astype(np.float32)
    m = cv2.GaussianBlur(near, (2 * r + 1, 2 * r + 1), 2.0, borderType=cv2.BORDER_REFLECT)[0]
    m = np.where(m < 1e-4, 0.0, m)
    # behind the near layer's blurred edge the far colour is kept as is (mask 1, t = 1)
    expected = ((1 - m)[:, None] * t[:, None] * a + m[:, None] * b) / ((1 - m) * t + m)[:, None]
    expected = np.broadcast_to(expected, (h, w, 3))
    if renderer == "reference":
        out = render_reference(img, coc, depth, kernel_radius_px=r)
    else:
        out = render_layered(img, coc, depth, backend=renderer, kernel_radius_px=r)
    np.testing.assert_allclose(out, expected, atol=2e-6)
    # the earlier rule makes the extended background opaque: visibly different here
    old = render_reference(img, coc, depth, kernel_radius_px=r, fill="normalized")
    assert np.abs(old - expected).max() > 0.02  # ~11 grey levels at the edge


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("fill", FILLS)
def test_fast_matches_reference_each_fill(backend, fill):
    # objects on both sides of the focal plane, some touching the image border
    rng = np.random.default_rng(11)
    h, w = 40, 56
    depth = np.full((h, w), 6.0)
    depth[5:30, 8:30] = 2.0
    depth[25:, 20:50] = 0.9
    depth[:12, 40:] = 1.3 + 0.2 * rng.random((12, 16))
    img = rng.random((h, w, 3)).astype(np.float32)
    p = sample_camera(depth, w, rng, focus_m=2.0, focal_length_mm=50.0, max_coc_px=21.0)
    d = depth + p["depth_shift_m"]
    coc = quantize_coc(coc_px(d, p["focus_m"], p["focal_length_mm"], p["f_number"], w))
    assert coc[25:, 20:50].min() > 5  # a blurred layer in front of the focal plane
    ref = render_reference(img, coc, d, kernel_radius_px=10, fill=fill)
    out = render_layered(img, coc, d, backend=backend, kernel_radius_px=10, fill=fill)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_fill_name_checked():
    img = np.zeros((4, 5, 3), np.float32)
    with pytest.raises(ValueError, match="fill must be one of"):
        render_layered(img, np.zeros((4, 5)), fill="inpaint")
    with pytest.raises(ValueError, match="fill must be one of"):
        render_reference(img, np.zeros((4, 5)), fill="inpaint")
