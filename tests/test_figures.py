"""Tests of defocus.evaluate.figures: files are written (PNG and PDF, non-empty)."""

from __future__ import annotations

import numpy as np
import pytest

from defocus.evaluate.figures import f_curves, pr_curves, qualitative_grid
from defocus.evaluate.metrics import BinaryEvaluator


def _curves(seed):
    rng = np.random.default_rng(seed)
    ev = BinaryEvaluator()
    for i in range(3):
        gt = rng.random((8, 8)) < 0.5
        ev.step(str(i), np.clip(0.4 * gt + 0.6 * rng.random((8, 8)), 0, 1), gt)
    return ev.results()[1]


@pytest.fixture(scope="module")
def curves_by_method():
    return {"lbp": _curves(0), "ref_all_blurred": _curves(1)}


def _check(paths):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_pr_and_f_curves(tmp_path, curves_by_method):
    _check(pr_curves(curves_by_method, "demo", tmp_path / "fig" / "pr_demo"))
    _check(f_curves(curves_by_method, "demo", tmp_path / "fig" / "f_demo"))
    with pytest.raises(ValueError, match="lack"):
        pr_curves({"x": {"f": np.zeros(3)}}, "demo", tmp_path / "bad")


def test_qualitative_grid(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for i in range(2):
        img = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
        gt = (rng.random((16, 20)) < 0.5).astype(np.uint8) * 255
        maps = {"lbp": rng.random((16, 20)), "ref_gradient": rng.random((16, 20))}
        rows.append((f"im{i}", img, gt, maps))
    _check(qualitative_grid(rows, tmp_path / "grid"))
    with pytest.raises(ValueError, match="at least one row"):
        qualitative_grid([], tmp_path / "empty")


def test_pick_diverse_takes_one_render_per_scene_first():
    from defocus.evaluate.figures import pick_diverse

    ids = ["moto_000", "moto_001", "planes01_000", "planes01_001", "x"]
    assert pick_diverse(ids, 3) == ["moto_000", "planes01_000", "x"]
    assert pick_diverse(ids, 5)[3:] == ["moto_001", "planes01_001"]
    assert pick_diverse(ids, 0) == []
