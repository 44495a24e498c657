"""SYNDOF renderer: thin-lens physics, layered compositing, scenes, dataset builder.

Independent references used: cv2.GaussianBlur (constant-depth scene), the full-frame
``render_reference`` (fast renderers), the thin-lens formula evaluated by hand.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from defocus.render import physics
from defocus.render.layered import (
    decompose_layers,
    gaussian_kernel_1d,
    render_layered,
    render_reference,
)
from defocus.render.physics import (
    coc_px,
    f_number_for_max_coc,
    quantize_coc,
    sample_camera,
    sigma_from_coc,
)
from defocus.render.syndof import render_sample

BACKENDS = ["numpy", "torch"]


def _scene(rng, h=36, w=48):
    """Three fronto-parallel planes plus a noisy (continuous) strip, metres."""
    depth = np.full((h, w), 4.0)
    depth[8:26, 10:30] = 1.2
    depth[:, :6] = 9.0
    depth[20:, 28:] = 0.8
    depth[2:8, 30:46] = 2.0 + rng.random((6, 16))
    return depth


# ------------------------------------------------------------------ physics


def test_coc_hand_value():
    # F=50 mm, z_f=2 m, z=4 m, N=2, W=360 px: z_v = 50*2000/1950 mm; A = 25 mm;
    # c = (360/36) * (z_v/2000) * 25 * 2000/4000 = 10 * (50/1950) * 25 * 0.5 px
    expected = 10.0 * (50.0 / 1950.0) * 25.0 * 0.5
    assert coc_px(4.0, 2.0, 50.0, 2.0, 360, epsilon_mm=0.0) == pytest.approx(expected, rel=1e-12)
    # the generator's offsets (blur_by_depth.m l. 117, 172): 1e-4 mm in both denominators
    z_v = 50.0 * 2000.0 / (1950.0 + 1e-4)
    with_eps = 10.0 * (z_v / 2000.0) * 25.0 * 2000.0 / (4000.0 + 1e-4)
    assert coc_px(4.0, 2.0, 50.0, 2.0, 360) == pytest.approx(with_eps, rel=1e-12)
    assert with_eps < expected * (1 - 5e-8)


def test_in_focus_plane_has_zero_coc():
    assert coc_px(np.array([2.5]), 2.5, 70.0, 1.4, 640)[0] == 0.0


def test_coc_grows_away_from_focus():
    behind = np.linspace(2.0, 50.0, 200)
    front = np.linspace(2.0, 0.5, 200)
    cb = coc_px(behind, 2.0, 85.0, 2.0, 800)
    cf = coc_px(front, 2.0, 85.0, 2.0, 800)
    assert np.all(np.diff(cb) > 0) and np.all(np.diff(cf) > 0)


def test_generator_offsets_move_a_coc_across_a_rounding_step():
    # a depth whose textbook CoC is 1.25 px + 1e-9 rounds up to 1.3; the generator's 1e-4 mm
    # offsets lower it by ~4e-8 px, below the half step, so it rounds down to 1.2
    zf, f, n, w = 2.0, 50.0, 4.0, 720
    k = float(coc_px(1e6, zf, f, n, w, epsilon_mm=0.0)) / (1.0 - zf / 1e6)  # c = k (1 - zf/z)
    z = zf / (1.0 - (1.25 + 1e-9) / k)
    assert quantize_coc(coc_px(z, zf, f, n, w, epsilon_mm=0.0)) == pytest.approx(1.3)
    assert quantize_coc(coc_px(z, zf, f, n, w)) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="epsilon_mm"):
        coc_px(z, zf, f, n, w, epsilon_mm=-1.0)


def test_focus_fraction_counts_layers_not_depths():
    # 40 far depths share a few quantised CoCs (merged into few layers), 10 near ones do not
    depth = np.concatenate([np.linspace(30.0, 31.0, 40), np.linspace(1.0, 2.0, 10)])
    depth = depth.reshape(5, 10)
    p = sample_camera(
        depth, 10, np.random.default_rng(0), focal_length_mm=50.0, focus_m=2.0, f_number=8.0
    )
    coc = quantize_coc(coc_px(depth, 2.0, 50.0, 8.0, 10))
    _, layer_coc = decompose_layers(coc, depth)
    first_zero = int(np.flatnonzero(layer_coc == 0)[0])  # far to near
    assert p["n_layers"] == len(layer_coc) < 20
    assert p["focus_fraction"] == pytest.approx(1.0 - (first_zero + 1) / len(layer_coc))
    coc_far_to_near = quantize_coc(coc_px(np.unique(depth)[::-1], 2.0, 50.0, 8.0, 10))
    per_depth = 1.0 - (np.flatnonzero(coc_far_to_near == 0)[0] + 1) / 50
    assert abs(p["focus_fraction"] - per_depth) > 0.1


def test_quantize_rounds_half_up_like_matlab_int64():
    np.testing.assert_allclose(quantize_coc([0.04, 0.05, 1.25, 2.349]), [0.0, 0.1, 1.3, 2.3])


def test_sigma_formulas():
    c = np.array([0.0, 1.0, 1.4, 5.0, 29.0])
    np.testing.assert_allclose(sigma_from_coc(c, "generator"), [0, 0, 0.1, 1.0, 7.0])
    np.testing.assert_allclose(sigma_from_coc(c, "paper"), [0, 0, 0.35, 1.25, 7.25])
    with pytest.raises(ValueError, match="sigma_formula"):
        sigma_from_coc(c, "disk")


def test_f_number_inverts_coc():
    n = f_number_for_max_coc(10.0, 2.0, 50.0, 1024, max_coc_px=29.0)
    # the generator's aperture formula has no offset (blur_by_depth.m l. 187-189) ...
    assert coc_px(10.0, 2.0, 50.0, n, 1024, epsilon_mm=0.0) == pytest.approx(29.0, rel=1e-12)
    # ... so with the CoC's offsets the extreme depth falls a hair short, still 29.0 px
    c = float(coc_px(10.0, 2.0, 50.0, n, 1024))
    assert 29.0 * (1 - 1e-7) < c < 29.0 and quantize_coc(c) == pytest.approx(29.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_extreme_depth_hits_max_coc(seed):
    rng = np.random.default_rng(seed)
    depth = 1.0 + 9.0 * rng.random((20, 30))
    p = sample_camera(depth, 30, rng, max_coc_px=29.0)
    d = depth + p["depth_shift_m"]
    c = quantize_coc(coc_px(d, p["focus_m"], p["focal_length_mm"], p["f_number"], 30))
    assert c.max() == pytest.approx(29.0)
    assert p["focal_length_mm"] in physics.FOCAL_LENGTHS_MM
    assert d.min() >= 5 * p["focal_length_mm"] / 1000 - 1e-12
    assert np.any(np.isclose(d, p["focus_m"]))  # focus drawn from the scene's depths
    json.dumps(p)  # JSON-serialisable


def test_depth_shift_when_too_close():
    depth = np.full((4, 4), 0.1)  # 0.1 m < 5 * 50 mm
    depth[0, 0] = 0.2
    p = sample_camera(depth, 4, np.random.default_rng(0), focal_length_mm=50.0)
    assert p["depth_shift_m"] == pytest.approx(0.25 - 0.1)


def test_camera_errors_name_the_value():
    with pytest.raises(ValueError, match="NaN or inf"):
        sample_camera(np.array([[1.0, np.nan]]), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="min_layers"):
        sample_camera(np.ones((2, 2)), 2, np.random.default_rng(0), min_layers=5, max_layers=2)
    with pytest.raises(ValueError, match="focus distance must exceed"):
        coc_px(1.0, 0.04, 50.0, 2.0, 10)


def test_focus_weights_favour_near_depths():
    w = physics.focus_index_weights(50)
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) > 0)


def test_decompose_merges_equal_adjacent_coc():
    depth = np.array([[5.0, 4.0, 3.0, 2.0]])
    coc = np.array([[2.0, 2.0, 0.0, 1.5]])
    labels, layer_coc = decompose_layers(coc, depth)
    np.testing.assert_array_equal(labels, [[0, 0, 1, 2]])
    np.testing.assert_allclose(layer_coc, [2.0, 0.0, 1.5])


# ------------------------------------------------------------------ layered rendering


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_focus_scene_unchanged(backend):
    img = np.random.default_rng(0).random((10, 12, 3)).astype(np.float32)
    out = render_layered(img, np.zeros((10, 12)), backend=backend)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("formula", ["generator", "paper"])
def test_constant_depth_is_one_gaussian_blur(backend, formula):
    img = np.random.default_rng(1).random((30, 40, 3)).astype(np.float32)
    coc = np.full((30, 40), 9.0)
    sigma = float(sigma_from_coc(9.0, formula))  # 2.0 or 2.25 px
    r = 7
    out = render_layered(img, coc, sigma_formula=formula, backend=backend, kernel_radius_px=r)
    # OpenCV's BORDER_REFLECT is MATLAB's 'symmetric' (edge pixel repeated)
    ref = cv2.GaussianBlur(img, (2 * r + 1, 2 * r + 1), sigma, borderType=cv2.BORDER_REFLECT)
    np.testing.assert_allclose(out, ref, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_energy_kept_for_constant_depth(backend, photo):
    img = photo.astype(np.float32) / 255.0
    out = render_layered(img, np.full(img.shape[:2], 13.0), backend=backend)
    # the symmetric border keeps the mean up to a border effect; measured < 1e-3
    assert abs(out.mean() - img.mean()) < 2e-3
    assert out.std() < img.std()


@pytest.mark.parametrize("renderer", ["reference", "numpy", "torch"])
def test_compositing_never_darkens_constant_colour(renderer):
    rng = np.random.default_rng(2)
    depth = _scene(rng)
    coc = quantize_coc(coc_px(depth, 2.0, 50.0, 0.25, depth.shape[1]))
    assert coc.max() > 5  # real blur on both sides of the focal plane
    img = np.full(depth.shape + (3,), 0.6, np.float32)
    if renderer == "reference":
        out = render_reference(img, coc, depth)
    else:
        out = render_layered(img, coc, depth, backend=renderer)
    assert out.min() >= 0.6 - 1e-5
    # the generator zeroes blurred masks < 1e-4 but keeps the colour: a tiny brightening
    assert out.max() <= 0.6 + 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kernel_radius_px", [None, 14])
def test_fast_matches_reference(backend, seed, kernel_radius_px):
    rng = np.random.default_rng(seed)
    depth = _scene(rng)
    img = rng.random(depth.shape + (3,)).astype(np.float32)
    p = sample_camera(depth, depth.shape[1], rng, max_coc_px=15.0)
    d = depth + p["depth_shift_m"]
    coc = quantize_coc(coc_px(d, p["focus_m"], p["focal_length_mm"], p["f_number"], 48))
    ref = render_reference(img, coc, d, kernel_radius_px=kernel_radius_px)
    out = render_layered(img, coc, d, backend=backend, kernel_radius_px=kernel_radius_px)
    # float32 (fast) against float64 (reference): stated tolerance 1e-5
    np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_matches_reference_continuous_depth(backend, seed):
    # a smooth slanted depth plus noise: hundreds of scattered thin layers on both sides of
    # the focal plane, touching every border, with the generator's fixed 29 x 29 window
    # (max CoC 29 px) so that the small blurs run on a trimmed window
    rng = np.random.default_rng(seed)
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    depth = 1.0 + 6.0 * (yy / h + 0.5 * xx / w) + 0.3 * rng.random((h, w))
    img = rng.random((h, w, 3)).astype(np.float32)
    p = sample_camera(depth, w, rng, max_coc_px=29.0, max_layers=1000)
    d = depth + p["depth_shift_m"]
    coc = quantize_coc(coc_px(d, p["focus_m"], p["focal_length_mm"], p["f_number"], w))
    assert p["n_layers"] > 100 and coc.max() == pytest.approx(29.0)
    kw = {"kernel_radius_px": p["kernel_radius_px"]}
    ref = render_reference(img, coc, d, **kw)
    for strip_px in (5, 32):
        out = render_layered(img, coc, d, backend=backend, strip_px=strip_px, **kw)
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_trimmed_window_drops_only_negligible_taps():
    from defocus.render.layered import TAIL, _effective_radius

    for sigma in (0.1, 0.5, 1.0, 2.0, 3.0, 7.0):
        k = gaussian_kernel_1d(sigma, 14)
        r = _effective_radius(k)
        assert 1 <= r <= 14
        assert 1.0 - k[14 - r : 15 + r].sum() < TAIL
        if r > 1:  # and it is the smallest such radius
            assert 1.0 - k[15 - r : 14 + r].sum() >= TAIL
    assert _effective_radius(gaussian_kernel_1d(7.0, 14)) == 14
    assert _effective_radius(gaussian_kernel_1d(0.25, 14)) <= 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layer_rects_cover_footprint_once(seed):
    from scipy import ndimage

    from defocus.render.layered import _BLOCK, _layer_rects

    rng = np.random.default_rng(seed)
    h, w = 70, 90
    mask = rng.random((h, w)) < 0.004
    mask[rng.integers(h), :] = True
    yy, xx = np.nonzero(mask)
    occ = np.zeros((-(-h // _BLOCK), -(-w // _BLOCK)), dtype=bool)
    occ[yy // _BLOCK, xx // _BLOCK] = True
    box = ndimage.find_objects(mask.astype(int))[0]
    for r, strip_px, max_width in [(3, 8, None), (14, 32, None), (14, 32, 16), (30, 5, 7)]:
        count = np.zeros((h, w), dtype=int)
        for y0, y1, x0, x1 in _layer_rects(occ, box, r, h, w, strip_px, 2 * r, max_width):
            assert 0 < y1 - y0 <= strip_px and 0 < x1 - x0
            assert max_width is None or x1 - x0 <= max_width
            count[y0:y1, x0:x1] += 1
        footprint = ndimage.maximum_filter(mask, size=2 * r + 1, mode="constant")
        assert count.max() == 1 and np.all(count[footprint] == 1)


def test_renderer_input_errors():
    img = np.zeros((4, 5, 3), np.float32)
    with pytest.raises(ValueError, match="coc_px shape"):
        render_layered(img, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="float image"):
        render_layered(img.astype(np.uint8), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="backend"):
        render_layered(img, np.zeros((4, 5)), backend="jax")
    with pytest.raises(ValueError, match="sigma_px"):
        gaussian_kernel_1d(0.0, 3)


# ------------------------------------------------------------------ samples, scenes, build


def test_render_sample_seeded_and_labelled(photo):
    rng_depth = np.random.default_rng(5)
    depth = _scene(rng_depth, *photo.shape[:2])
    a = render_sample(photo, depth, np.random.default_rng(7))
    b = render_sample(photo, depth, np.random.default_rng(7))
    c = render_sample(photo, depth, np.random.default_rng(8))
    np.testing.assert_array_equal(a["blurred"], b["blurred"])
    assert a["params"] == b["params"]
    assert a["params"] != c["params"]
    assert a["blurred"].dtype == np.uint8 and a["sigma"].dtype == np.float32
    np.testing.assert_array_equal(a["binary"], a["coc"] > 1)
    np.testing.assert_allclose(a["sigma"], np.where(a["coc"] > 1, (a["coc"] - 1) / 4, 0), atol=1e-6)
    assert a["coc"].max() == pytest.approx(29.0)


def test_render_sample_torch_matches_numpy(photo):
    depth = _scene(np.random.default_rng(3), *photo.shape[:2])
    a = render_sample(photo, depth, np.random.default_rng(1), backend="numpy")
    b = render_sample(photo, depth, np.random.default_rng(1), backend="torch")
    assert np.abs(a["blurred"].astype(int) - b["blurred"].astype(int)).max() <= 1


def test_motorcycle_depth_from_calib():
    from skimage import data

    from defocus.render.scenes import motorcycle_scene

    img, depth = motorcycle_scene()
    _, _, disp = data.stereo_motorcycle()
    assert img.shape == (500, 741, 3) and depth.shape == (500, 741)
    assert np.all(np.isfinite(depth))
    y, x = 250, 370
    assert np.isfinite(disp[y, x])
    # Z = baseline * f / (d + doffs), skimage docstring calibration (4x down-sampled)
    assert depth[y, x] == pytest.approx(193.001 * 994.978 / (disp[y, x] + 31.086) / 1000, 1e-5)
    assert 2.0 < depth.min() and depth.max() < 5.1
    small, sd = motorcycle_scene(max_side=100)
    assert max(small.shape[:2]) == 100 and sd.shape == small.shape[:2]


def test_procedural_scene_seeded():
    from defocus.render.scenes import procedural_scene

    a = procedural_scene(np.random.default_rng(0), size_hw=(48, 64))
    b = procedural_scene(np.random.default_rng(0), size_hw=(48, 64))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (48, 64, 3) and a[0].dtype == np.uint8
    assert 1.0 <= a[1].min() and a[1].max() <= 20.0
    assert len(np.unique(a[1])) > 3  # slanted ground plus cards
    with pytest.raises(ValueError, match="depth_range_m"):
        procedural_scene(np.random.default_rng(0), depth_range_m=(5.0, 1.0))


def test_build_syndof(tmp_path):
    from defocus.io.manifest import read_manifest, write_manifest
    from defocus.render.build import assign_splits, build_syndof
    from defocus.render.scenes import procedural_scene

    rng = np.random.default_rng(0)
    sources = []
    for i in range(3):
        img, depth = procedural_scene(rng, size_hw=(24, 32), n_cards=1)
        sources.append({"name": f"s{i}", "image": img, "depth_m": depth})
    cfg = {"max_coc_px": 9.0}
    rows = build_syndof(sources, tmp_path / "a", 2, 3, cfg, "numpy", 0.34, progress=False)
    rows2 = build_syndof(sources, tmp_path / "b", 2, 3, cfg, "numpy", 0.34, progress=False)
    assert [r["id"] for r in rows] == ["s0_000", "s0_001", "s1_000", "s1_001", "s2_000", "s2_001"]
    by_src = {}
    for r in rows:
        by_src.setdefault(r["id"][:2], set()).add(r["split"])
    assert all(len(v) == 1 for v in by_src.values())  # no source in two splits
    assert sorted(s for v in by_src.values() for s in v) == ["test", "train", "train"]
    for r, r2 in zip(rows, rows2, strict=True):
        np.testing.assert_array_equal(cv2.imread(r["image"]), cv2.imread(r2["image"]))
        assert set(np.unique(cv2.imread(r["gt"], cv2.IMREAD_UNCHANGED))) <= {0, 255}
        sigma = np.load(r["defocus"])
        assert sigma.dtype == np.float32 and sigma.shape == (24, 32)
    params = json.loads((tmp_path / "a" / "params" / "s0_000.json").read_text())
    assert params["max_coc_px"] == 9.0 and params["source"] == "s0"
    assert params["fill"] == "regionfill"  # the generator's background fill by default
    write_manifest(rows, tmp_path / "a" / "manifest.csv")
    df = read_manifest(tmp_path / "a" / "manifest.csv")
    assert len(df) == 6
    assert assign_splits(["a", "b"], 0.0, 0) == {"a": "train", "b": "train"}
    with pytest.raises(ValueError, match="unique"):
        build_syndof([sources[0], sources[0]], tmp_path / "c", progress=False)


def test_make_figure(tmp_path, photo):
    from defocus.render.figures import make_figure

    depth = _scene(np.random.default_rng(0), *photo.shape[:2])
    s = render_sample(photo, depth, np.random.default_rng(0))
    make_figure([dict(s, image=photo)], tmp_path / "fig.png")
    assert cv2.imread(str(tmp_path / "fig.png")) is not None
