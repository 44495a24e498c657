"""The LBP release's coarse-to-fine matting (solveAlphaC2F), each step on known answers."""

import numpy as np
import pytest

from defocus.methods.classic import c2f_matting as c2f


def test_down_sample_shape_and_constant():
    a = np.full((427, 640), 0.7)
    d = c2f.down_sample(a)
    # I(3:2:end-2): rows 2, 4, ..., h - 3 (0-based)
    assert d.shape == (len(range(2, 425, 2)), len(range(2, 638, 2)))
    np.testing.assert_allclose(d, 0.7)  # the 5-tap window never reaches the zero border
    ramp = np.tile(np.arange(20.0), (12, 1))
    np.testing.assert_allclose(c2f.down_sample(ramp), np.tile(np.arange(2.0, 18, 2), (4, 1)))


@pytest.mark.parametrize("fine", [(427, 640), (428, 641)])
def test_up_sample_places_samples_and_interpolates(fine):
    coarse = c2f.down_sample(np.zeros(fine)).shape
    rng = np.random.default_rng(0)
    a = rng.random(coarse)
    u = c2f.up_sample(a, fine)
    assert u.shape == fine
    lo_r = (fine[0] - 2 * coarse[0] + 1) // 2
    lo_c = (fine[1] - 2 * coarse[1] + 1) // 2
    rows = lo_r + 2 * np.arange(coarse[0])
    cols = lo_c + 2 * np.arange(coarse[1])
    np.testing.assert_allclose(u[np.ix_(rows, cols)], a)  # samples kept
    mid = u[np.ix_(rows[:-1] + 1, cols)]  # between two samples: their mean
    np.testing.assert_allclose(mid, 0.5 * (a[:-1] + a[1:]))
    np.testing.assert_allclose(c2f.up_sample(np.full(coarse, 0.3), fine)[1:-1, 1:-1], 0.3)


def test_guided_upsampling_of_a_linear_matte_is_exact():
    # alpha = a . I + b at the coarse level -> the same model on the fine image
    rng = np.random.default_rng(1)
    fine = rng.random((41, 53, 3))
    small = c2f.down_sample(fine)
    a, b = np.array([0.5, -0.2, 0.3]), 0.1
    coef = c2f.linear_coefficients(small @ a + b, small, epsilon=1e-12)
    np.testing.assert_allclose(coef[..., :3], np.broadcast_to(a, coef[..., :3].shape), atol=1e-5)
    np.testing.assert_allclose(coef[..., 3], b, atol=1e-5)
    up = c2f.upsample_alpha(small @ a + b, small, fine)
    np.testing.assert_allclose(up, fine @ a + b, atol=1e-4)


def test_c2f_matting_separates_two_coloured_halves():
    img = np.zeros((64, 80, 3))
    img[:, :40] = [0.9, 0.2, 0.1]
    img[:, 40:] = [0.1, 0.3, 0.8]
    img += np.random.default_rng(2).normal(0, 0.01, img.shape)
    cmap = np.zeros((64, 80))
    cval = np.zeros((64, 80))
    cmap[20:44, 5:15] = 1
    cval[20:44, 5:15] = 1  # sharp constraints on the left
    cmap[20:44, 65:75] = 1  # blurred (0) constraints on the right
    alpha = c2f.solve_alpha_c2f(img, cmap, cval)
    assert alpha.shape == (64, 80)
    assert alpha[:, 2:38].mean() > 0.9 and alpha[:, 42:78].mean() < 0.1
    again = c2f.solve_alpha_c2f(img, cmap, cval)
    assert again.tobytes() == alpha.tobytes()


def test_c2f_on_an_image_too_small_for_the_pyramid_solves_directly():
    img = np.random.default_rng(3).random((9, 12, 3))
    cmap = np.zeros((9, 12))
    cmap[:, :2] = cmap[:, -2:] = 1
    cval = np.zeros((9, 12))
    cval[:, :2] = 1
    np.testing.assert_array_equal(
        c2f.solve_alpha_c2f(img, cmap, cval), c2f.solve_alpha(img, cmap, cval)
    )
