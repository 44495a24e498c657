"""Tests of defocus.evaluate.evaluate and .tables.

The headline check recomputes one table-1 row from a prediction HDF5 with an independent
few-line numpy implementation of the default protocol (a loop over thresholds, no
histograms).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from defocus.evaluate.evaluate import evaluate_file, resolve_protocol, write_outputs
from defocus.evaluate.metrics import PROTOCOL_TEXT, describe_protocol
from defocus.evaluate.tables import (
    TABLE1_COLUMNS,
    ablation_table,
    continuous_table,
    is_reference,
    runtime_table,
    table1,
    write_table,
    write_tables_readme,
)
from defocus.io.image import write_image
from defocus.io.manifest import write_manifest
from defocus.io.predictions import PredictionError, PredictionWriter

SIZES = [(12, 16), (10, 10), (12, 16), (9, 14)]


def _make(tmp_path, method="ref_gradient", drop=None, bad_size=None, defocus=False):
    """A 4-image test split (+1 train image) with PNG GT, and a prediction file."""
    rng = np.random.default_rng(5)
    data = tmp_path / "data"
    rows, maps, gts = [], {}, {}
    for i, (h, w) in enumerate(SIZES + [(8, 8)]):
        iid = f"im{i}"
        gt = rng.random((h, w)) < 0.6
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        write_image(data / f"{iid}.png", img)
        write_image(data / f"{iid}_gt.png", (gt * 255).astype(np.uint8))
        row = {"id": iid, "split": "test" if i < 4 else "train", "image": f"{iid}.png"}
        row["gt"] = f"{iid}_gt.png"
        if defocus:
            np.save(data / f"{iid}_sigma.npy", rng.uniform(0, 4, (h, w)))
            row["defocus"] = f"{iid}_sigma.npy"
        rows.append(row)
        noise = rng.random((h, w))
        maps[iid] = np.clip(0.45 * gt + 0.55 * noise, 0, 1).astype(np.float32)
        gts[iid] = gt
    manifest = write_manifest(rows, data / "manifest.csv")
    pred = tmp_path / "pred" / method / "demo.h5"
    with PredictionWriter(pred, method=method, dataset="demo", device="cpu", raw_unit="px") as w:
        for iid, m in maps.items():
            if iid == drop:
                continue
            if iid == bad_size:
                m = m[:-1]
            raw = 4.0 * m if defocus else None
            w.add(iid, m, seconds=0.01 * (int(iid[2:]) + 1), raw=raw)
    return pred, data / "manifest.csv", maps, gts, manifest


def _independent_default_protocol(maps, gts):
    """Few-line numpy version of the default protocol, one threshold at a time."""
    t = (np.arange(256) / 255).astype(np.float32)
    P, R, mae = [], [], []
    for m, g in zip(maps, gts, strict=True):
        tp = np.array([np.sum((m >= tk) & g) for tk in t], float)
        fp = np.array([np.sum((m >= tk) & ~g) for tk in t], float)
        P.append(np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0))
        R.append(tp / g.sum() if g.sum() else np.zeros(256))
        mae.append(np.abs(m.astype(float) - g).mean())
    p, r = np.mean(P, axis=0), np.mean(R, axis=0)
    f = np.where(p + r > 0, 1.3 * p * r / np.maximum(0.3 * p + r, 1e-300), 0)
    return f.max(), f.mean(), float(np.mean(mae))


def test_table1_row_recomputed_independently(tmp_path):
    pred, manifest, maps, gts, _ = _make(tmp_path)
    per_image, curves, summary = evaluate_file(pred, manifest, "test", {"n_bootstrap": 200})
    ids = [f"im{i}" for i in range(4)]
    assert per_image["id"].tolist() == ids
    fb, fmean, mae = _independent_default_protocol([maps[i] for i in ids], [gts[i] for i in ids])
    row = table1([summary]).iloc[0]
    assert list(table1([summary]).columns) == TABLE1_COLUMNS
    assert (row.method, row.dataset, row.n_images) == ("ref_gradient", "demo", 4)
    assert row.f_beta == pytest.approx(fb, rel=1e-12)
    assert row.f_beta_mean == pytest.approx(fmean, rel=1e-12)
    assert row.mae == pytest.approx(mae, rel=1e-6)  # maps pass through float32 HDF5
    assert row.f_beta_ci_low <= row.f_beta <= row.f_beta_ci_high
    assert row.mae_ci_low <= row.mae <= row.mae_ci_high
    assert bool(row.reference) is True
    # runtime from the per-id seconds of the test split: (0.01+0.02+0.03+0.04)/4
    assert summary["seconds_per_image"] == pytest.approx(0.025)
    assert summary["device"] == "cpu"
    assert summary["image_size"].startswith("3 sizes")
    assert summary["protocol"] == resolve_protocol({"n_bootstrap": 200})
    assert curves["tp"].shape == (4, 256)
    assert "(200 resamples)" in summary["protocol_text"]


def test_default_protocol_text_matches_defaults():
    # the evaluate defaults and the caption text describe the same protocol
    assert describe_protocol(**resolve_protocol(None)) == PROTOCOL_TEXT
    assert "k/255" in PROTOCOL_TEXT and "beta2 = 0.3" in PROTOCOL_TEXT
    sharp = describe_protocol(positive="sharp", n_thresholds=21, averaging="pooled")
    assert "k/20" in sharp and "sharp" in sharp and "pooled" in sharp


def test_write_outputs_roundtrip(tmp_path):
    pred, manifest, *_ = _make(tmp_path)
    per_image, curves, summary = evaluate_file(pred, manifest, protocol={"n_bootstrap": 50})
    out = tmp_path / "results"
    write_outputs(per_image, curves, summary, out / "m.csv", out / "c.npz", out / "s.json")
    assert pd.read_csv(out / "m.csv")["id"].tolist() == per_image["id"].tolist()
    with np.load(out / "c.npz") as z:
        np.testing.assert_array_equal(z["f"], curves["f"])
        assert z["ids"].tolist() == per_image["id"].tolist()
    s = json.loads((out / "s.json").read_text())
    assert s["f_beta"] == pytest.approx(summary["f_beta"])
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


def test_missing_id_error(tmp_path):
    pred, manifest, *_ = _make(tmp_path, drop="im2")
    with pytest.raises(PredictionError, match=r"lacks maps for 1 of 4.*im2"):
        evaluate_file(pred, manifest)


def test_size_mismatch_error(tmp_path):
    pred, manifest, *_ = _make(tmp_path, bad_size="im1")
    with pytest.raises(PredictionError, match=r"im1.*\(9, 10\).*\(10, 10\)"):
        evaluate_file(pred, manifest)


def test_unknown_protocol_key():
    with pytest.raises(ValueError, match="beta_squared.*valid keys"):
        resolve_protocol({"beta_squared": 0.3})


def test_continuous_metrics_reported(tmp_path):
    pred, manifest, maps, _, man = _make(tmp_path, defocus=True)
    per_image, _, summary = evaluate_file(
        pred, manifest, protocol={"n_bootstrap": 20, "continuous_clip": [0, 3.275]}
    )
    sigma = np.clip(np.load(tmp_path / "data" / "im0_sigma.npy"), 0, 3.275)
    raw = np.clip(4.0 * maps["im0"], 0, 3.275)
    assert per_image["defocus_mae"][0] == pytest.approx(np.abs(raw - sigma).mean(), rel=1e-5)
    assert summary["n_images_continuous"] == 4
    cont = continuous_table([summary])
    assert cont.loc[0, "defocus_mse"] == pytest.approx(per_image["defocus_mse"].mean())


def _summary(method, dataset, f, mae=0.2, sec=0.1):
    return {
        "method": method,
        "dataset": dataset,
        "n_images": 10,
        "f_beta": f,
        "f_beta_ci_low": f - 0.02,
        "f_beta_ci_high": f + 0.02,
        "mae": mae,
        "mae_ci_low": mae - 0.01,
        "mae_ci_high": mae + 0.01,
        "f_beta_mean": f - 0.1,
        "f_beta_adaptive": f - 0.05,
        "accuracy": 0.8,
        "iou": 0.6,
        "seconds_per_image": sec,
        "device": "cpu",
        "image_size": "640x480",
    }


SUMMARIES = [
    _summary("ref_all_blurred", "cuhk", 0.75),
    _summary("lbp", "cuhk", 0.80),
    _summary("lbp", "dut", 0.70),
    _summary("lbp@patch=11", "cuhk", 0.78),
    _summary("lbp@patch=21,levels=2", "cuhk", 0.82),
]


def test_table1_sorting_and_reference():
    t = table1(SUMMARIES)
    # dataset first, references last within a dataset, else input order
    assert list(zip(t.method, t.dataset, strict=True)) == [
        ("lbp", "cuhk"),
        ("lbp@patch=11", "cuhk"),
        ("lbp@patch=21,levels=2", "cuhk"),
        ("ref_all_blurred", "cuhk"),
        ("lbp", "dut"),
    ]
    assert t.reference.tolist() == [False, False, False, True, False]
    assert is_reference("ref_gradient@window=7") and not is_reference("lbp")


def test_runtime_and_ablation_tables():
    rt = runtime_table(SUMMARIES)
    assert list(rt.columns) == [
        "method",
        "dataset",
        "seconds_per_image",
        "device",
        "image_size",
        "implementation",
        "weights",
        "backbone_init",
        "training",
        "faithful_at_paper_scale",
    ]
    ab = ablation_table(SUMMARIES, "lbp")
    assert ab.method.tolist() == ["lbp", "lbp@patch=11", "lbp@patch=21,levels=2", "lbp"]
    assert ab["patch"].tolist() == ["", "11", "21", ""]
    assert ab["levels"].tolist() == ["", "", "2", ""]
    # delta against the default of the same dataset: .78 - .80, .82 - .80
    assert ab.delta_f_beta.tolist() == pytest.approx([0.0, -0.02, 0.02, 0.0])
    with pytest.raises(ValueError, match="no summary of method 'dhde'"):
        ablation_table(SUMMARIES, "dhde")


def test_write_table_three_formats(tmp_path):
    t = table1(SUMMARIES)
    paths = write_table(
        t, tmp_path / "tables" / "table1", "Table 1: F_beta and MAE.", PROTOCOL_TEXT
    )
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    assert all(p.stat().st_size > 0 for p in paths)
    back = pd.read_csv(paths[0])
    assert back["f_beta"].tolist() == pytest.approx(t["f_beta"].tolist())
    md = paths[1].read_text()
    assert PROTOCOL_TEXT in md and "| ref\\_all\\_blurred" not in md
    # no provenance in these summaries: every row is marked (dagger) and the legend says why
    assert "| ref_all_blurred\u2020 | cuhk | 10 | 0.750 |" in md
    assert "\u2020 not a faithful implementation at the paper's scale" in md
    tex = paths[2].read_text()
    assert "\\begin{table}" in tex and "\\caption{" in tex and "ref\\_all\\_blurred" in tex
    assert "\\toprule" in tex and "beta2" in tex


def test_tables_readme(tmp_path):
    path = tmp_path / "README.md"
    write_tables_readme(
        path,
        [("table1.csv", "DeFusionNet (CVPR'19) Table 1", "F and MAE on CUHK and DUT")],
        PROTOCOL_TEXT,
    )
    text = path.read_text()
    assert "| table1.csv | DeFusionNet (CVPR'19) Table 1 |" in text
    assert PROTOCOL_TEXT in text


def test_tables_readme_explains_each_papers_preset(tmp_path):
    from defocus.evaluate.protocols import BUILTIN_PRESETS, default_evaluation, preset_info

    evaluation = default_evaluation()
    info = [preset_info(n, evaluation, 0, "cuhk") for n in BUILTIN_PRESETS]
    path = tmp_path / "README.md"
    write_tables_readme(path, [], PROTOCOL_TEXT, presets=info)
    text = path.read_text()
    assert "## Each paper's own scoring (protocol presets)" in text
    # one row per preset: the paper table it reproduces, its source, what is assumed
    assert "| hifst_cvpr17 | HiFST (Golestaneh CVPR'17)" in text
    assert "PRDataComputation.m @ d49a5ccdafa54fcbed63dd9f96976250b74adcf5" in text
    assert "| dhde_cvpr17 |" in text and "accuracy_eq13" in text
    assert "reading 2 (more likely): the in-focus region positive" in text
    assert "CUHK code not released" in text
    # and each preset's protocol in words: HiFST's differs from the declared one
    hifst_line = next(x for x in text.splitlines() if x.startswith("- `hifst_cvpr17`"))
    assert "mat2gray" in hifst_line and "split cuhk_all" in hifst_line
    assert "mat2gray" not in next(x for x in text.splitlines() if x.startswith("- `declared`"))
    # without presets, no such section
    write_tables_readme(path, [], PROTOCOL_TEXT)
    assert "protocol presets" not in path.read_text()
