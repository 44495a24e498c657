"""End to end: the Snakemake CLI runs the tiny config (config/test.yaml) and the paper DAG plans."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest


def _snakemake(root, *args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_tiny_config_end_to_end(root, tmp_path):
    r = _snakemake(
        root,
        "--cores",
        "2",
        f"--configfile={root / 'config' / 'test.yaml'}",
        "all",
        "results/data/demo_sharp/manifest.csv",
        "--show-failed-logs",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = tmp_path / "results"
    t1 = pd.read_csv(res / "tables" / "table1.csv")
    assert set(t1["method"]) == {"ref_all_blurred", "ref_gradient", "ref_gradient@window=5", "zeng"}
    assert (t1["dataset"] == "demo_syndof").all()
    assert t1["f_beta"].between(0, 1).all() and t1["mae"].between(0, 1).all()
    assert (t1["f_beta_ci_low"] <= t1["f_beta"] + 1e-9).all()
    assert (t1["f_beta"] <= t1["f_beta_ci_high"] + 1e-9).all()
    # all-blurred: recall 1 at every threshold, precision = blurred fraction of each image,
    # so its max-F follows from the GT alone — recompute it independently
    man = pd.read_csv(res / "data" / "demo_syndof" / "manifest.csv")
    test = man[man["split"] == "test"]
    from defocus.io.image import read_gray

    frac = [(read_gray(res / "data" / "demo_syndof" / p) >= 128).mean() for p in test["gt"]]
    p = float(np.mean(frac))
    expected = 1.3 * p / (0.3 * p + 1)
    row = t1[t1["method"] == "ref_all_blurred"].iloc[0]
    assert row["f_beta"] == pytest.approx(expected, abs=1e-6)
    assert row["mae"] == pytest.approx(1 - p, abs=1e-6)
    # prediction file contract
    with h5py.File(res / "predictions" / "ref_gradient" / "demo_syndof.h5") as f:
        assert sorted(f["maps"]) == sorted(test["id"].astype(str))
        assert f.attrs["n_images"] == len(test)
    summary = json.loads(
        (res / "metrics" / "ref_gradient" / "demo_syndof.summary.json").read_text()
    )
    assert summary["n_images"] == len(test)
    for name in ("pr_demo_syndof", "fmeasure_demo_syndof", "qualitative_demo_syndof"):
        assert (res / "figures" / f"{name}.png").stat().st_size > 1000
    assert (res / "figures" / "syndof_demo_syndof.png").exists()
    assert (res / "tables" / "table1.md").exists() and (res / "tables" / "table1.tex").exists()
    assert (
        tmp_path / "benchmarks" / "out" / "predict" / "ref_gradient" / "demo_syndof.tsv"
    ).exists()
    assert len(pd.read_csv(res / "data" / "demo_sharp" / "manifest.csv")) == 3
    # the learned method went through the shared training entry point
    assert (res / "models" / "zeng" / "model.pt").exists()
    assert len(pd.read_csv(res / "models" / "zeng" / "work" / "loss.csv")) == 10
    # a second run has nothing to do
    r = _snakemake(root, "-n", f"--configfile={root / 'config' / 'test.yaml'}", "all", cwd=tmp_path)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr


def test_paper_config_plans_offline(root, tmp_path):
    r = _snakemake(
        root, "-n", f"--configfile={root / 'config' / 'paper.yaml'}", "all", cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    for rule in ("fetch_dataset", "registry_manifest", "render_syndof", "predict", "tables"):
        assert rule in out


@pytest.mark.slow
def test_local_cuhk_copy_is_scored_without_download(root, tmp_path):
    """A user's own CUHK copy (datasets.cuhk.root) flows through the generic rules."""
    import cv2
    import yaml
    from skimage import data

    from defocus.io.image import write_image

    cuhk = tmp_path / "my_cuhk"
    photo = cv2.resize(data.coffee(), (96, 64), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(photo, (0, 0), 3.0)
    # two BTBNet test images (one with the upper-case extension CUHK really has) + one train
    names = {"out_of_focus0037": ".jpg", "out_of_focus0026": ".JPG", "out_of_focus0001": ".jpg"}
    for k, (name, ext) in enumerate(names.items()):
        img = photo.copy()
        cut = 32 + 8 * k  # columns >= cut are blurred; GT white = blurred (CUHK polarity)
        img[:, cut:] = blurred[:, cut:]
        ok, buf = cv2.imencode(".jpg", img[..., ::-1])
        (cuhk / "image").mkdir(parents=True, exist_ok=True)
        (cuhk / "image" / f"{name}{ext}").write_bytes(buf.tobytes())
        gt = np.zeros((64, 96), np.uint8)
        gt[:, cut:] = 255
        write_image(cuhk / "gt" / f"{name}.png", gt)
    cfg = {
        "datasets": {"cuhk": {"root": str(cuhk)}},
        "syndof": {},
        "test_sets": ["cuhk"],
        "methods": {"run": ["ref_all_blurred", "ref_gradient"]},
        "evaluation": {"bootstrap": 20, "qualitative_images": 1},
        "external_methods": {},
    }
    cfgfile = tmp_path / "cuhk.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    r = _snakemake(
        root, "--cores", "2", f"--configfile={cfgfile}", "results/tables/table1.csv", cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "fetch_dataset" not in r.stdout + r.stderr  # nothing downloaded
    man = pd.read_csv(tmp_path / "results" / "data" / "cuhk" / "manifest.csv")
    assert dict(zip(man["id"], man["split"], strict=True)) == {
        "out_of_focus0001": "train",
        "out_of_focus0026": "test",
        "out_of_focus0037": "test",
    }
    t1 = pd.read_csv(tmp_path / "results" / "tables" / "table1.csv").set_index("method")
    assert t1.loc["ref_all_blurred", "n_images"] == 2
    # blurred fractions of the two test images: (96-40)/96 (0026, k=1) and (96-32)/96 (0037)
    p = np.mean([56 / 96, 64 / 96])
    assert t1.loc["ref_all_blurred", "f_beta"] == pytest.approx(1.3 * p / (0.3 * p + 1), abs=1e-6)
    assert t1.loc["ref_all_blurred", "mae"] == pytest.approx(1 - p, abs=1e-6)
    # gradient energy finds the blurred columns: better than the all-blurred reference
    assert t1.loc["ref_gradient", "f_beta"] > t1.loc["ref_all_blurred", "f_beta"]

    # the local copy is fingerprinted: editing one mask rebuilds the manifest and the table
    gt = np.zeros((64, 96), np.uint8)
    gt[:, 80:] = 255  # out_of_focus0037: now 16/96 blurred instead of 64/96
    write_image(cuhk / "gt" / "out_of_focus0037.png", gt)
    r = _snakemake(
        root, "--cores", "2", f"--configfile={cfgfile}", "results/tables/table1.csv", cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "registry_manifest" in r.stdout + r.stderr
    t1 = pd.read_csv(tmp_path / "results" / "tables" / "table1.csv").set_index("method")
    p = np.mean([56 / 96, 16 / 96])
    assert t1.loc["ref_all_blurred", "mae"] == pytest.approx(1 - p, abs=1e-6)

    # masks that all come out one class fail the manifest build, with the reason on the console
    for name in names:
        write_image(cuhk / "gt" / f"{name}.png", np.zeros((64, 96), np.uint8))
    r = _snakemake(
        root, "--cores", "2", f"--configfile={cfgfile}", "results/tables/table1.csv", cwd=tmp_path
    )
    assert r.returncode != 0
    assert "registry_manifest cuhk: every GT mask" in r.stderr and "entirely sharp" in r.stderr
