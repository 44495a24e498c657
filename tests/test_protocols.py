"""Named protocol presets (defocus.evaluate.protocols) and the metrics they need.

Every known answer below is counted by hand on maps of a few pixels (the arithmetic is in the
comments), or compared with an independent implementation: scikit-learn's
``average_precision_score`` for AP, a line-by-line numpy transcription of HiFST's
``Evaluation/PRDataComputation.m`` (isalirezag/HiFST @ d49a5cc) for the hifst_cvpr17 preset,
and ``scipy.stats.kendalltau`` on orderings whose tau is known (+1, -1).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from defocus.cli import configure_score_parser as configure_parser
from defocus.cli import run_score as run
from defocus.evaluate.evaluate import evaluate_file
from defocus.evaluate.metrics import (
    BinaryEvaluator,
    average_precision,
    binarise_gt,
    eq13_accuracy,
    eq13_threshold,
    mat2gray,
    sigma_levels,
    threshold_counts,
)
from defocus.evaluate.protocols import (
    BUILTIN_PRESETS,
    SPLITS,
    config_errors,
    default_evaluation,
    get_preset,
    preset_protocol,
    select_rows,
    split_ids,
)
from defocus.evaluate.tables import protocol_record, protocols_table, write_protocols_table
from defocus.io.image import write_image
from defocus.io.manifest import read_manifest, write_manifest
from defocus.io.predictions import PredictionWriter


def _evaluation(**over):
    ev = default_evaluation()
    ev.update(over)
    return ev


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def test_eq13_accuracy_by_hand():
    # v_max = 10, v_min = 0: tau = 0.3 * 10 + 0.7 * 0 = 3 (Park et al. Eq. 13, alpha 0.3)
    m = np.array([[0, 1, 2], [3, 4, 10]], float)
    gt = np.array([[0, 0, 1], [1, 1, 1]], bool)
    assert eq13_threshold(m) == pytest.approx(3.0)
    # blurred where m >= 3: [[F F F], [T T T]]; wrong only at (0, 2): 5 of 6 pixels right
    assert eq13_accuracy(m, gt) == pytest.approx(5 / 6)
    # invariant to a per-image affine map: a sigma map and its min-max normalised blur map
    assert eq13_accuracy(2.5 * m + 7, gt) == pytest.approx(5 / 6)
    assert eq13_accuracy(mat2gray(m), gt) == pytest.approx(5 / 6)
    # alpha = 0.5: tau = 5, blurred only at 10: right at 3 of 6 pixels
    assert eq13_accuracy(m, gt, alpha=0.5) == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="alpha"):
        eq13_threshold(m, alpha=1.5)


def test_eq13_in_the_evaluator_is_the_image_mean():
    ev = BinaryEvaluator(eq13_alpha=0.3)
    ev.step("a", np.array([[0.0, 0.1, 0.2], [0.3, 0.4, 1.0]], np.float32),
            np.array([[0, 0, 1], [1, 1, 1]], bool))  # fmt: skip
    # tau = 0.3 max + 0.7 min = 0.3; float32(0.3) = 0.30000001 > 0.3 is blurred: 5 of 6 right
    ev.step("b", np.array([[1.0, 0.0]], np.float32), np.array([[False, True]]))  # 0 of 2
    per_image, _ = ev.results()
    assert per_image["accuracy_eq13"].tolist() == pytest.approx([5 / 6, 0.0])
    assert ev.summary()["accuracy_eq13"] == pytest.approx(5 / 12)


def test_average_precision_by_hand_and_against_sklearn():
    # scores 0.9 (pos), 0.6 (neg), 0.3 (pos), 0.1 (neg), descending:
    # AP = 1 * (1/2) + (2/3) * (1/2) = 5/6
    m = np.array([[0.9, 0.1], [0.6, 0.3]], np.float32)
    gt = np.array([[1, 0], [0, 1]], bool)
    ev = BinaryEvaluator()
    ev.step("a", m, gt)
    assert ev.results()[0]["ap"].iloc[0] == pytest.approx(5 / 6)
    # random maps: the same as scikit-learn on the 8-bit quantised scores
    rng = np.random.default_rng(3)
    ev = BinaryEvaluator()
    expected = []
    for i in range(4):
        m = rng.random((9, 7)).astype(np.float32)
        g = rng.random((9, 7)) < 0.4
        ev.step(str(i), m, g)
        q = np.floor(m.astype(np.float64) * 255)  # q >= k <=> m >= k/255 (module docstring)
        expected.append(average_precision_score(g.ravel(), q.ravel()))
    per_image, _ = ev.results()
    assert per_image["ap"].to_numpy() == pytest.approx(expected, abs=1e-12)
    assert ev.summary()["map"] == pytest.approx(np.mean(expected), abs=1e-12)


def test_map_skips_images_without_positive_pixels():
    ev = BinaryEvaluator()
    ev.step("a", np.array([[0.9, 0.1]], np.float32), np.array([[True, False]]))  # AP 1
    ev.step("b", np.array([[0.9, 0.1]], np.float32), np.array([[False, False]]))  # no positive
    assert np.isnan(ev.results()[0]["ap"].iloc[1])
    assert ev.summary()["map"] == pytest.approx(1.0)
    # counts: no positive pixel -> NaN; TP 0 at every threshold -> AP 0
    ap = average_precision(np.array([[0, 0]]), np.array([[2, 1]]), np.array([[0, 0]]))
    assert np.isnan(ap[0])


def test_sigma_pr_by_hand():
    raw = np.array([[0.7, 0.8], [1.6, 2.5]])
    gt = np.array([[0, 1], [1, 1]], bool)
    levels = sigma_levels(0.5, 2.0, 4)  # 0.5, 1.0, 1.5, 2.0
    assert levels.tolist() == pytest.approx([0.5, 1.0, 1.5, 2.0])
    tp, fp, fn = threshold_counts(raw, gt, levels)
    assert (
        tp.tolist() == [3, 2, 2, 1] and fp.tolist() == [1, 0, 0, 0] and fn.tolist() == [0, 1, 1, 2]
    )
    # DHDE's own levels: 11 labels, 0.5 to 2.0 px in steps of 0.15 (Sec. 5.1)
    assert np.diff(sigma_levels(0.5, 2.0, 11)) == pytest.approx(np.full(10, 0.15))
    with pytest.raises(ValueError, match="sigma levels"):
        sigma_levels(2.0, 0.5, 4)


def test_mat2gray_and_gt_rules():
    assert mat2gray(np.array([[2, 4], [6, 10]])).tolist() == [[0, 0.25], [0.5, 1]]
    const = np.full((2, 2), 0.4, np.float32)
    assert np.array_equal(mat2gray(const), const)  # nothing to stretch: unchanged
    g = np.array([[0, 1], [127, 255]], np.uint8)
    assert binarise_gt(g).tolist() == [[False, False], [False, True]]
    # HiFST: GT_Img(GT_Img>0.5)=1 on uint8 marks every non-zero pixel
    assert binarise_gt(g, "nonzero").tolist() == [[False, True], [True, True]]
    with pytest.raises(ValueError, match="nonzero"):
        binarise_gt(g, "otsu")


# --------------------------------------------------------------------------------------
# presets and splits
# --------------------------------------------------------------------------------------


def test_split_files_and_their_counts():
    for name, spec in SPLITS.items():
        ids = split_ids(name)
        assert len(ids) == spec.n == len(set(ids)), name
    all_ids = set(split_ids("cuhk_all"))
    assert sum(i.startswith("motion") for i in all_ids) == 296
    assert set(split_ids("cuhk_defocus")) == {i for i in all_ids if i.startswith("out_of")}
    # Kim et al. 800/200: disjoint, together all 1000 images
    train, test = set(split_ids("cuhk_kim_train")), set(split_ids("cuhk_kim_test"))
    assert not train & test and train | test == all_ids
    assert set(split_ids("cuhk_btbnet_test")) <= set(split_ids("cuhk_defocus"))
    assert split_ids("cuhk_kim_test")[0] == "motion0001"  # first line of test_list.txt
    with pytest.raises(ValueError, match="known splits"):
        split_ids("cuhk_nope")


def test_paper_presets_ignore_the_configs_declared_keys():
    ev = _evaluation(averaging="pooled", positive="sharp", bootstrap=7)
    declared = preset_protocol("declared", ev, 3, "cuhk")
    assert declared["averaging"] == "pooled" and declared["positive"] == "sharp"
    hifst = preset_protocol("hifst_cvpr17", ev, 3, "cuhk")
    assert hifst["averaging"] == "image" and hifst["positive"] == "blurred"
    assert hifst["normalise"] == "mat2gray" and hifst["gt_binarise"] == "nonzero"
    assert hifst["n_bootstrap"] == 7 and hifst["seed"] == 3 and hifst["preset"] == "hifst_cvpr17"
    # DMENet's RTF normalisation applies to RTF under every preset
    rtf = preset_protocol("dhde_cvpr17", ev, 3, "rtf")
    assert rtf["continuous_scale"] == pytest.approx(3.275) and rtf["continuous_crop"]
    assert set(BUILTIN_PRESETS) >= {"declared", "defusionnet_t1_blurred", "defusionnet_t1_sharp",
                                    "hifst_cvpr17", "dhde_cvpr17", "dmenet_cvpr19"}  # fmt: skip


def test_user_presets_and_config_errors():
    ev = _evaluation(presets={"mine": {"base": "hifst_cvpr17", "positive": "sharp"}})
    p = preset_protocol("mine", ev, 0, "cuhk")
    assert p["positive"] == "sharp" and p["normalise"] == "mat2gray" and p["preset"] == "mine"
    assert get_preset("mine", ev["presets"]).source == "user-defined in the config"
    with pytest.raises(ValueError, match="unknown evaluation protocol preset 'nope'.*mine"):
        get_preset("nope", ev["presets"])
    bad = _evaluation(
        protocol="nope",
        tabulate=["hifst_cvpr17"],
        presets={"x": {"base": "other"}, "y": {"metric": "speed"}, "declared": {}},
    )
    errors = config_errors(bad)
    text = "\n".join(errors)
    assert "config key evaluation.protocol: unknown evaluation protocol preset 'nope'" in text
    assert "evaluation.presets.x.base" in text and "evaluation.presets.y.metric" in text
    assert "evaluation.presets.declared: a built-in preset" in text
    assert "evaluation.tabulate: must include declared" in text
    assert config_errors(_evaluation()) == []


def _cuhk_like(root, gts: dict[str, tuple[str, np.ndarray]]):
    """A manifest of CUHK-named ids: id -> (split, bool GT, True = blurred)."""
    data = root / "data" / "cuhk"
    rows = []
    for iid, (split, gt) in gts.items():
        write_image(data / f"{iid}.png", np.full((*gt.shape, 3), 90, np.uint8))
        write_image(data / f"{iid}_gt.png", gt.astype(np.uint8) * 255)
        rows.append({"id": iid, "split": split, "image": f"{iid}.png", "gt": f"{iid}_gt.png"})
    write_manifest(rows, data / "manifest.csv")
    return data / "manifest.csv"


def test_select_rows_follows_the_split_file(tmp_path):
    gt = np.array([[1, 0]], bool)
    manifest = _cuhk_like(
        tmp_path,
        {"motion0001": ("train", gt), "out_of_focus0001": ("train", gt),
         "out_of_focus0037": ("test", gt)},
    )  # fmt: skip
    df = read_manifest(manifest)
    dhde = preset_protocol("dhde_cvpr17", _evaluation(), 0, "cuhk")
    rows, missing = select_rows(df, dhde, "cuhk")
    assert rows["id"].tolist() == ["out_of_focus0001", "out_of_focus0037"]
    assert len(missing) == 702
    rows, missing = select_rows(df, preset_protocol("declared", _evaluation(), 0, "cuhk"), "cuhk")
    assert rows["id"].tolist() == ["out_of_focus0037"] and missing == []
    # another dataset than the split's: its manifest's test split
    rows, _ = select_rows(df, dhde, "dut")
    assert rows["id"].tolist() == ["out_of_focus0037"]


# --------------------------------------------------------------------------------------
# a preset end to end: hifst_cvpr17 against a transcription of PRDataComputation.m
# --------------------------------------------------------------------------------------


def _hifst_reference(maps: list[np.ndarray], gts: list[np.ndarray]) -> float:
    """PRDataComputation.m line by line (same-size maps, so no imresize), then max-F."""
    precision, recall = np.zeros(256), np.zeros(256)
    for m, g in zip(maps, gts, strict=True):
        g = (g > 0).astype(float)  # GT_Img(GT_Img>0.5)=1; GT_Img(GT_Img~=1)=0 on uint8
        lo, hi = m.min(), m.max()
        map_im = 255 * (m - lo) / (hi - lo)  # the map is already white = blurred here
        for t in range(256):
            idx = map_im >= t - 1e-9  # float tolerance of the k/255 float32 table
            tp = np.count_nonzero(idx & (g == 1))
            if tp:
                precision[t] += tp / np.count_nonzero(idx)
                recall[t] += tp / np.count_nonzero(g)
    precision, recall = precision / len(maps), recall / len(maps)
    f = np.where(precision + recall > 0, 1.3 * precision * recall /
                 np.maximum(0.3 * precision + recall, 1e-300), 0)  # fmt: skip
    return float(f.max())


def test_hifst_preset_matches_the_released_evaluation(tmp_path):
    rng = np.random.default_rng(11)
    ids = ["motion0001", "out_of_focus0001", "out_of_focus0002"]
    gts = {i: rng.random((6, 8)) < 0.6 for i in ids}
    # the third GT has a grey value 1 that only the nonzero rule counts as blurred
    gt_u8 = {i: g.astype(np.uint8) * 255 for i, g in gts.items()}
    gt_u8["out_of_focus0002"][0, 0] = 1
    data = tmp_path / "data" / "cuhk"
    rows = []
    for i in ids:
        write_image(data / f"{i}.png", np.full((6, 8, 3), 90, np.uint8))
        write_image(data / f"{i}_gt.png", gt_u8[i])
        rows.append({"id": i, "split": "train" if i == "motion0001" else "test",
                     "image": f"{i}.png", "gt": f"{i}_gt.png"})  # fmt: skip
    write_manifest(rows, data / "manifest.csv")
    # maps in [0.2, 0.7] (not stretched): mat2gray changes them
    maps = {i: (0.2 + 0.5 * np.clip(0.5 * gts[i] + 0.6 * rng.random((6, 8)), 0, 1))
            .astype(np.float32) for i in ids}  # fmt: skip
    pred = tmp_path / "pred.h5"
    with PredictionWriter(pred, method="x", dataset="cuhk") as w:
        for i in ids:
            w.add(i, maps[i], seconds=0.0)
    proto = preset_protocol("hifst_cvpr17", _evaluation(), 0, "cuhk", n_bootstrap=0)
    _, _, s = evaluate_file(pred, data / "manifest.csv", "test", proto, dataset="cuhk")
    expected = _hifst_reference([maps[i] for i in ids], [gt_u8[i] for i in ids])
    assert s["n_images"] == 3 and s["n_split_missing"] == 997  # the rest of the 1000
    assert s["f_beta"] == pytest.approx(expected, abs=1e-9)
    assert "split cuhk_all: 3 of 1000" in s["images"] and s["preset"] == "hifst_cvpr17"
    # the declared protocol scores the two test images only, unstretched
    _, _, d = evaluate_file(pred, data / "manifest.csv", "test",
                            preset_protocol("declared", _evaluation(), 0, "cuhk",
                                            n_bootstrap=0))  # fmt: skip
    assert d["n_images"] == 2 and d["f_beta"] != pytest.approx(s["f_beta"])


def test_resize_policy_and_sigma_pr_in_evaluate_file(tmp_path):
    gt = np.array([[0, 1], [1, 1]], bool)
    data = tmp_path / "data" / "cuhk"
    write_image(data / "out_of_focus0001.png", np.full((2, 2, 3), 90, np.uint8))
    write_image(data / "g.png", gt.astype(np.uint8) * 255)
    write_manifest([{"id": "out_of_focus0001", "split": "test",
                     "image": "out_of_focus0001.png", "gt": "g.png"}],
                   data / "manifest.csv")  # fmt: skip
    pred = tmp_path / "pred.h5"
    raw = np.array([[0.7, 0.8], [1.6, 2.5]], np.float32)
    with PredictionWriter(pred, method="x", dataset="cuhk", raw_unit="px") as w:
        w.add("out_of_focus0001", mat2gray(raw), seconds=0.0, raw=raw)
    ev = _evaluation(presets={"dhde4": {"base": "dhde_cvpr17", "sigma_levels": [0.5, 2.0, 4]}})
    proto = preset_protocol("dhde4", ev, 0, "cuhk", n_bootstrap=0)
    _, _, s = evaluate_file(pred, data / "manifest.csv", "test", proto)
    # from test_sigma_pr_by_hand: level 1.0 gives P = 1, R = 2/3: F = 1.3 (2/3) / (0.3 + 2/3)
    assert s["f_beta_sigma"] == pytest.approx(1.3 * (2 / 3) / (0.3 + 2 / 3))
    assert s["metric"] == "accuracy_eq13" and s["n_images_sigma"] == 1
    # a 4x4 map of a 2x2 GT: an error under declared, resized under a resize policy
    big = tmp_path / "big.h5"
    with PredictionWriter(big, method="x", dataset="cuhk") as w:
        w.add("out_of_focus0001", np.kron(gt, np.ones((2, 2))).astype(np.float32), seconds=0.0)
    from defocus.io.predictions import PredictionError

    with pytest.raises(PredictionError, match="differs from GT shape"):
        evaluate_file(big, data / "manifest.csv", "test", {"n_bootstrap": 0})
    _, _, r = evaluate_file(big, data / "manifest.csv", "test",
                            {"n_bootstrap": 0, "resize": "area"})  # fmt: skip
    assert r["f_beta"] == pytest.approx(1.0) and r["mae"] == pytest.approx(0.0)


# --------------------------------------------------------------------------------------
# table_protocols: ranks and Kendall's tau
# --------------------------------------------------------------------------------------


def _record(method, values: dict[str, tuple[str, float]], provenance=None):
    summaries = {}
    for preset, (metric, v) in values.items():
        summaries[preset] = {
            "method": method, "dataset": "d", "metric": metric, metric: v,
            "protocol_text": preset, "n_images": 3, "n_split_missing": 0,
            "images": "manifest test split", "provenance": provenance or
            {"implementation": "faithful", "faithful": True},
        }  # fmt: skip
    return json.loads(json.dumps(protocol_record(summaries)))


def test_ranks_and_kendall_tau(tmp_path):
    presets = ["declared", "rev", "lower"]
    recs = [
        _record("a", {"declared": ("f_beta", 0.9), "rev": ("f_beta", 0.7), "lower": ("mae", 0.1)}),
        _record("b", {"declared": ("f_beta", 0.8), "rev": ("f_beta", 0.8), "lower": ("mae", 0.2)}),
        _record("c", {"declared": ("f_beta", 0.7), "rev": ("f_beta", 0.9), "lower": ("mae", 0.3)}),
        # a trivial reference row: shown, never ranked
        _record(
            "ref_all_blurred", {p: ("mae" if p == "lower" else "f_beta", 0.95) for p in presets}
        ),  # fmt: skip
    ]
    t = protocols_table(recs, presets)
    by = t.set_index(["preset", "method"])
    assert [by.loc[("declared", m), "rank"] for m in "abc"] == [1, 2, 3]
    assert [by.loc[("rev", m), "rank"] for m in "abc"] == [3, 2, 1]
    # MAE: lower is better, so the same order as declared
    assert [by.loc[("lower", m), "rank"] for m in "abc"] == [1, 2, 3]
    assert np.isnan(by.loc[("declared", "ref_all_blurred"), "rank"])
    tau = t.groupby("preset")["kendall_tau"].first()
    assert tau["declared"] == pytest.approx(1.0) and tau["lower"] == pytest.approx(1.0)
    assert tau["rev"] == pytest.approx(-1.0)
    assert (t["n_ranked"] == 3).all()
    info = [{"name": p, "paper_table": p, "metric": "m", "differs": p, "text": p} for p in presets]
    paths = write_protocols_table(t, tmp_path / "table_protocols", presets, info)
    md = paths[1].read_text()
    assert "| d | a | 0.900 (1) | 0.700 (3) | 0.100 (1) |" in md
    assert "| d | Kendall's tau vs declared | 1.000 | -1.000 | 1.000 |" in md
    assert pd.read_csv(paths[0]).shape[0] == 12
    assert json.loads(paths[3].read_text())["presets"][1]["name"] == "rev"
    with pytest.raises(ValueError, match="must include 'declared'"):
        protocols_table(recs, ["rev"])
    # the figure: one line per ranked method across the presets, PNG and PDF
    from defocus.evaluate.figures import protocols_figure

    figs = protocols_figure(t, presets, tmp_path / "protocols")
    assert [f.suffix for f in figs] == [".png", ".pdf"] and all(f.stat().st_size for f in figs)
    with pytest.raises(ValueError, match="no rows"):
        protocols_figure(t.iloc[:0], presets, tmp_path / "empty")


# --------------------------------------------------------------------------------------
# defocus score --preset
# --------------------------------------------------------------------------------------


def test_score_preset_on_a_folder_of_released_maps(tmp_path, capsys):
    rng = np.random.default_rng(5)
    ids = ["motion0001", "out_of_focus0001", "out_of_focus0037"]
    gts = {i: rng.random((6, 8)) < 0.6 for i in ids}
    manifest = _cuhk_like(
        tmp_path,
        {"motion0001": ("train", gts["motion0001"]),
         "out_of_focus0001": ("train", gts["out_of_focus0001"]),
         "out_of_focus0037": ("test", gts["out_of_focus0037"])},
    )  # fmt: skip
    maps_dir = tmp_path / "released"
    for i in ids:  # white = sharp, as HiFST writes its maps; half the size of the GT
        m = np.clip(0.5 * (~gts[i]) + 0.5 * rng.random((6, 8)), 0, 1)
        small = m[::2, ::2]
        write_image(maps_dir / f"{i}.png", (small * 255).round().astype(np.uint8))
    p = argparse.ArgumentParser()
    configure_parser(p)
    common = ["--maps", str(maps_dir), "--dataset", "cuhk", "--manifest", str(manifest)]
    args = p.parse_args([*common, "--invert", "--preset", "hifst_cvpr17", "--json"])
    assert run(args) == 0
    row = json.loads(capsys.readouterr().out)
    # all three images of the 1000 are scored, though two are manifest train rows
    assert row["n_images"] == 3 and row["preset"] == "hifst_cvpr17"
    assert row["metric"] == "f_beta" and row["value"] == pytest.approx(row["f_beta"])
    assert "split cuhk_all: 3 of 1000" in row["images"]
    assert "mat2gray" in row["protocol_text"] and "bicubic" in row["protocol_text"]
    args = p.parse_args(["--maps", str(maps_dir), "--dataset", "cuhk", "--manifest",
                         str(manifest), "--invert", "--json"])  # fmt: skip
    assert run(args) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 1  # declared: the test split
    args = p.parse_args(["--maps", str(maps_dir), "--dataset", "cuhk", "--manifest",
                         str(manifest), "--preset", "nope"])  # fmt: skip
    assert run(args) == 2
    assert "unknown evaluation protocol preset 'nope'" in capsys.readouterr().err


def test_a_users_split_file(tmp_path):
    # e.g. DMENet's 200 CUHK test images listed from the authors' datasets.zip
    listing = tmp_path / "dmenet_cuhk_test.txt"
    listing.write_text("# ls test/CUHK/image\nout_of_focus0002.jpg\nmotion0009.JPG\n")
    ev = _evaluation(presets={"dm": {"base": "dmenet_cvpr19", "split": {"cuhk": str(listing)}}})
    assert config_errors(ev) == []
    proto = preset_protocol("dm", ev, 0, "cuhk")
    gt = np.array([[1, 0]], bool)
    manifest = _cuhk_like(
        tmp_path,
        {"motion0009": ("train", gt), "out_of_focus0002": ("train", gt),
         "out_of_focus0037": ("test", gt)},
    )  # fmt: skip
    rows, missing = select_rows(read_manifest(manifest), proto, "cuhk")
    assert sorted(rows["id"]) == ["motion0009", "out_of_focus0002"] and missing == []
    gone = _evaluation(presets={"dm": {"split": {"cuhk": str(tmp_path / "absent.txt")}}})
    with pytest.raises(ValueError, match="absent.txt not found"):
        select_rows(read_manifest(manifest), preset_protocol("dm", gone, 0, "cuhk"), "cuhk")
    bad = _evaluation(presets={"dm": {"split": {"cuhk": "cuhk_nope"}}})
    assert "evaluation.presets.dm.split.cuhk: unknown split 'cuhk_nope'" in config_errors(bad)[0]


def test_the_workflow_checks_preset_names_before_any_job(root, tmp_path):
    import subprocess
    import sys

    overlay = tmp_path / "bad.yaml"
    overlay.write_text("evaluation:\n  protocol: nope\n  tabulate: [hifst_cvpr17]\n")
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
         "--configfile", str(root / "config" / "test.yaml"), str(overlay), "-n", "all"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode != 0
    assert "config key evaluation.protocol: unknown evaluation protocol preset 'nope'" in r.stderr
    assert "config key evaluation.tabulate: must include declared" in r.stderr
