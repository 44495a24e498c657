"""End to end on the tiny config (config/test.yaml): the tables say what each row is, their
captions describe the protocol that ran, every file of the tables rules is declared, and the
report's captions follow the config."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import pandas as pd
import pytest


def _snakemake(root, *args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def tiny_run(root, tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny_tables")
    cfg = f"--configfile={root / 'config' / 'test.yaml'}"
    r = _snakemake(root, "--cores", "2", cfg, "all", "--show-failed-logs", cwd=work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return work


@pytest.mark.slow
def test_captions_carry_the_protocol_that_ran(tiny_run):
    tables = tiny_run / "results" / "tables"
    # config/test.yaml bootstraps 50 resamples; the default 1000 must appear nowhere
    for name in ("table1", "table_runtime", "table_continuous", "table_ablation_ref_gradient"):
        for ext in (".md", ".tex"):
            text = (tables / f"{name}{ext}").read_text()
            assert "(50 resamples)" in text and "1000 resamples" not in text, name + ext
        meta = json.loads((tables / f"{name}.json").read_text())
        assert "(50 resamples)" in meta["caption"] and meta["protocol"]["n_bootstrap"] == 50
        assert meta["provenance"]["git_commit"] and meta["provenance"]["torch"]
    readme = (tables / "README.md").read_text()
    assert "(50 resamples)" in readme and "1000 resamples" not in readme
    # the runtime table's footer names the versions and the commit
    assert "Versions: python" in (tables / "table_runtime.md").read_text()
    assert "git commit" in (tables / "table_runtime.tex").read_text()


@pytest.mark.slow
def test_provenance_columns_and_dagger(tiny_run):
    res = tiny_run / "results"
    # "n/a" is a value of backbone_init, not a missing number
    t1 = pd.read_csv(res / "tables" / "table1.csv", keep_default_na=False).set_index("method")
    rt = pd.read_csv(res / "tables" / "table_runtime.csv", keep_default_na=False)
    rt = rt.set_index("method")
    n_train = (pd.read_csv(res / "data" / "demo_syndof" / "manifest.csv")["split"] == "train").sum()
    for t in (t1, rt):
        assert {"implementation", "weights", "backbone_init", "training"} <= set(t.columns)
        z = t.loc["zeng"]
        assert (z.implementation, z.weights, z.backbone_init) == (
            "reconstruction",
            "trained here",
            "n/a",
        )
        # 10 iterations (config/test.yaml) of the class default 20000, on the train split
        assert z.training == f"10/20000 it, {n_train}/? img"
        assert t.loc["ref_gradient", "implementation"] == "reference"
        assert not t["faithful_at_paper_scale"].astype(bool).any()
    md = (res / "tables" / "table1.md").read_text()
    assert "| zeng\u2020 |" in md and "\u2020 not a faithful implementation" in md
    assert "\\textdagger" in (res / "tables" / "table1.tex").read_text()
    readme = (res / "tables" / "README.md").read_text()
    assert "| zeng | reconstruction | trained here | n/a |" in readme
    # the prediction file and the checkpoint record what was loaded and used
    with h5py.File(res / "predictions" / "zeng" / "demo_syndof.h5") as f:
        prov = json.loads(f.attrs["provenance_json"])
        assert f.attrs["backbone_init"] == "n/a" and prov["training"] == z.training
    import torch

    meta = torch.load(res / "models" / "zeng" / "model.pt", weights_only=False)["metadata"]
    assert meta["n_train_images"] == n_train and meta["backbone_init"] == "n/a"
    # adaptive F is not ~0 where max-F is high (the in-focus-map threshold)
    assert (t1["f_beta_adaptive"] > 0.5 * t1["f_beta"]).all(), t1[["f_beta", "f_beta_adaptive"]]
    # the per-image metrics flag constant maps: the all-blurred reference has no evidence
    per_image = pd.read_csv(res / "metrics" / "ref_all_blurred" / "demo_syndof.csv")
    assert per_image["no_evidence"].all()
    assert t1.loc["ref_all_blurred", "n_no_evidence"] == len(per_image)
    assert not pd.read_csv(res / "metrics" / "zeng" / "demo_syndof.csv")["no_evidence"].any()


@pytest.mark.slow
def test_every_tables_file_is_declared_and_reported(root, tiny_run, tmp_path):
    cfg = f"--configfile={root / 'config' / 'test.yaml'}"
    r = _snakemake(root, cfg, "--summary", cwd=tiny_run)
    assert r.returncode == 0, r.stderr[-2000:]
    declared = {line.split("\t")[0] for line in r.stdout.splitlines()}
    written = {str(p.relative_to(tiny_run)) for p in (tiny_run / "results" / "tables").iterdir()}
    assert written and written <= declared, sorted(written - declared)
    # the report shows every table, its captions rendered from the config: beta2 0.5 here
    overlay = tmp_path / "beta.yaml"
    overlay.write_text("evaluation:\n  beta2: 0.5\n  bootstrap: 50\n  qualitative_images: 2\n")
    report = tmp_path / "report.html"
    r = _snakemake(
        root, "--configfile", str(root / "config" / "test.yaml"), str(overlay),
        f"--report={report}", cwd=tiny_run,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    html = report.read_text()
    assert "beta2 = 0.5" in html and "beta2 = 0.3" not in html
    for name in ("table1", "table_runtime", "table_continuous", "table_ablation_ref_gradient"):
        assert f"{name}.csv" in html, name
    assert "Undefined substitution" not in r.stderr
