"""SYNDOF dataset composition: dissimilar source frames, renders per source, Middlebury as
the generator's samples (quarter resolution, Laplace-filled holes, whole centimetres)."""

from __future__ import annotations

import numpy as np
import pytest

from defocus.render.compose import (
    difference_for_count,
    middlebury_as_generator,
    renders_per_source,
    select_dissimilar,
    sequence_key,
    thumbnail,
)


def test_sequence_key_strips_the_frame_number():
    assert sequence_key("sintel_alley_1_frame_0007") == "sintel_alley_1_frame"
    assert sequence_key("synthia_SYNTHIA-SEQS-01-NIGHT_Stereo_Right_Omni_F_000012") == (
        "synthia_SYNTHIA-SEQS-01-NIGHT_Stereo_Right_Omni_F"
    )
    assert sequence_key("middlebury2014_Adirondack-perfect") == "middlebury2014_Adirondack-perfect"


def _seq():
    base = np.random.default_rng(0).random((32, 32)).astype(np.float32) * 0.5
    # mean absolute differences from frame 0: 0.01, 0.02, 0.2, 0.21 (constant offsets)
    names = [f"a_frame_{i:04d}" for i in range(5)] + ["b_single"]
    thumbs = [base + d for d in (0.0, 0.01, 0.02, 0.2, 0.21)] + [base]
    return names, thumbs


def test_select_dissimilar_keeps_frames_far_from_the_last_kept():
    names, thumbs = _seq()
    assert select_dissimilar(names, thumbs, 0.05) == [0, 3, 5]
    assert select_dissimilar(names, thumbs, 0.015) == [0, 2, 3, 5]  # 0.02 from frame 0 ...
    assert select_dissimilar(names, thumbs, 0.0) == list(range(6))
    with pytest.raises(ValueError, match="min_difference"):
        select_dissimilar(names, thumbs, -1.0)


def test_threshold_found_for_a_source_count():
    names, thumbs = _seq()
    for n in (2, 3, 4):
        d = difference_for_count(names, thumbs, n)
        assert len(select_dissimilar(names, thumbs, d)) <= n
        assert len(select_dissimilar(names, thumbs, d * (1 - 1e-6))) > n or d == 0.0
    assert difference_for_count(names, thumbs, 10) == 0.0


def test_thumbnail_is_grey_and_small():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, 30:] = 255
    t = thumbnail(img)
    assert t.shape == (32, 32) and t.dtype == np.float32
    assert t[:, :15].max() == 0.0 and t[:, 17:].min() == pytest.approx(1.0)


def test_renders_per_source_match_the_paper_total():
    c = renders_per_source(2006, 8231, seed=0)
    assert c.sum() == 8231 and set(np.unique(c)) == {4, 5} and (c == 5).sum() == 8231 - 4 * 2006
    np.testing.assert_array_equal(c, renders_per_source(2006, 8231, seed=0))
    assert not np.array_equal(c, renders_per_source(2006, 8231, seed=1))
    with pytest.raises(ValueError, match="n_renders"):
        renders_per_source(10, 5, 0)


def test_middlebury_quarter_resolution_filled_and_in_centimetres():
    h, w = 80, 120
    yy, xx = np.mgrid[0:h, 0:w]
    depth = 1.5 + 0.01 * xx  # a slanted plane, 1.5-2.69 m
    depth[20:40, 30:70] = np.nan  # a disparity hole
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    small, d = middlebury_as_generator(img, depth)
    assert small.shape == (20, 30, 3) and d.shape == (20, 30) and d.dtype == np.float32
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d * 100, np.round(d * 100), atol=1e-3)  # whole centimetres
    # the slant is linear, so the Laplace fill restores it inside the hole (to the cm)
    expected = 1.5 + 0.01 * (4 * np.arange(30) + 0)  # nearest samples every 4th column
    np.testing.assert_allclose(
        d, np.broadcast_to(np.round(expected * 100) / 100, d.shape), atol=0.011
    )
    with pytest.raises(ValueError, match="no finite"):
        middlebury_as_generator(img, np.full((h, w), np.nan))


def test_build_with_per_source_counts(tmp_path):
    from defocus.render.build import build_syndof
    from defocus.render.scenes import procedural_scene

    rng = np.random.default_rng(0)
    sources = []
    for i in range(2):
        img, depth = procedural_scene(rng, size_hw=(24, 32), n_cards=1)
        sources.append({"name": f"s{i}", "image": img, "depth_m": depth})
    rows = build_syndof(sources, tmp_path, [1, 3], 0, {"max_coc_px": 9.0}, progress=False)
    assert [r["id"] for r in rows] == ["s0_000", "s1_000", "s1_001", "s1_002"]
    with pytest.raises(ValueError, match="render counts"):
        build_syndof(sources, tmp_path, [1], 0, progress=False)


def test_render_dataset_paper_composition(tmp_path):
    from defocus.io.manifest import read_manifest
    from defocus.render.workflow import render_dataset

    cfg = {
        "sources": ["demo_procedural"],
        "n_procedural": 3,
        "n_per_source": 1,
        "n_renders": 5,
        "n_sources": 2,
        "max_side": 40,
        "test_fraction": 0.0,
        "camera": {"max_coc": 9},
    }
    out = render_dataset(cfg, tmp_path / "manifest.csv", seed=0)
    df = read_manifest(out)
    assert len(df) == 5
    n_src = len({i.rsplit("_", 1)[0] for i in df["id"]})
    assert n_src == 2  # three different scenes of one "sequence", two kept
