"""The paper DAG rehearsed end to end on the CPU (config/rehearsal.yaml).

Miniatures of every real input (tests/rehearsal) are served from 127.0.0.1 at the registry's
URL paths; Snakemake runs config/rehearsal.yaml (config/paper.yaml at toy scale) to the end.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rehearsal import build_all

PLACEHOLDER_HOST = "rehearsal.invalid"

#: keys (dotted paths; "*" = any key at that level) where config/rehearsal.yaml may differ
#: from config/paper.yaml: where the data are, and scale knobs
ALLOWED = (
    "datasets.*.base_url",
    "datasets.*.root",
    "datasets.*.scenes",
    "datasets.*.n_images",
    "releases.*.base_url",
    "test_sets",  # a subset (checked below); the others' manifests are still built
    "syndof.syndof.n_per_source",
    "syndof.syndof.n_renders",
    "syndof.syndof.n_sources",
    "methods.params.*.iterations",
    "methods.params.*.iterations_pretrain",
    "methods.params.*.batch_size",
    "methods.params.*.batch",
    "methods.params.*.crop",
    "methods.params.*.infer_size",
    "methods.params.*.lr_step",
    "methods.params.*.ckpt_every",
    "methods.params.*.patches_per_image",
    "methods.params.*.n_atoms",
    "methods.params.*.dict_iter",
    "patches.n_per_image",
    "dhde_features.params.iterations",
    "dhde_features.params.iterations_pretrain",
    "dhde_features.params.batch_size",
    "dhde_features.params.ckpt_every",
    "evaluation.bootstrap",
)


def _diff(a, b, path=()):
    """Dotted paths of every leaf where nested dicts ``a`` and ``b`` differ."""
    if isinstance(a, dict) or isinstance(b, dict):
        if a is None or b is None:  # a section only one file has: compare with an empty one
            a, b = a or {}, b or {}
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return [".".join(path)]
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(k), b.get(k), (*path, str(k)))
        return out
    return [] if a == b else [".".join(path)]


def _allowed(key: str) -> bool:
    parts = key.split(".")
    for pattern in ALLOWED:
        pat = pattern.split(".")
        if len(pat) == len(parts) and all(p in ("*", q) for p, q in zip(pat, parts, strict=True)):
            return True
    return False


def merged_config(root: Path, *overlays: dict) -> dict:
    """config/paper.yaml with config/rehearsal.yaml (and ``overlays``) merged on top, as
    Snakemake merges several --configfile files (snakemake.utils.update_config)."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((root / "config" / "paper.yaml").read_text())
    for overlay in (yaml.safe_load((root / "config" / "rehearsal.yaml").read_text()), *overlays):
        update_config(cfg, overlay)
    return cfg


def test_rehearsal_config_is_the_paper_config_but_data_and_scale(root):
    paper = yaml.safe_load((root / "config" / "paper.yaml").read_text())
    changed = _diff(paper, merged_config(root))
    assert changed, "config/rehearsal.yaml should change config/paper.yaml"
    assert [k for k in changed if not _allowed(k)] == []
    assert not _allowed("methods.params.dmenet.width")
    assert not _allowed("methods.params.defusionnet.pretrained")
    assert not _allowed("methods.run")
    assert set(merged_config(root)["test_sets"]) <= set(paper["test_sets"])


class _LoggingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and records every requested path (no console output)."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path.split("?")[0])
        super().do_GET()


@pytest.fixture()
def http_root():
    """``serve(folder) -> (host:port, list of requested paths)`` on 127.0.0.1."""
    servers = []

    def serve(folder):
        handler = functools.partial(_LoggingHandler, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.requests = []
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"127.0.0.1:{httpd.server_address[1]}", httpd.requests

    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def derived_overlay(root: Path, minis, host: str) -> dict:
    """The test's own overlay: config/rehearsal.yaml's placeholder host replaced by the local
    server's, and the sha256 of every archive built (pinned: the download verifies them)."""
    overlay = yaml.safe_load((root / "config" / "rehearsal.yaml").read_text())
    for section in ("datasets", "releases"):
        for key, entry in overlay[section].items():
            if entry.get("base_url"):
                entry["base_url"] = entry["base_url"].replace(PLACEHOLDER_HOST, host)
                if key in minis.sha256:  # the full-size weights are built on demand only
                    entry["sha256"] = dict(minis.sha256[key])
    return overlay


def test_miniatures_download_verify_and_read(root, tmp_path, http_root, monkeypatch):
    """Every registry dataset: the miniature downloads (pinned sha256), unpacks and reads."""
    from defocus.datasets.download import ensure_dataset
    from defocus.datasets.readers import build_manifest
    from defocus.io.manifest import read_manifest

    monkeypatch.chdir(
        tmp_path
    )  # roots in config/rehearsal.yaml are relative to the working directory
    minis = build_all(tmp_path, vgg=False)
    host, requests = http_root(minis.serve_root)
    cfg = merged_config(root, derived_overlay(root, minis, host))
    # every dataset the paper config names has a miniature
    assert set(cfg["datasets"]) <= set(minis.url_dirs) | set(minis.roots)
    for name, entry in cfg["datasets"].items():
        data_root = ensure_dataset(name, entry, tmp_path / "resources", progress=False)
        opts = {"conversion": str(minis.rtf_conversion)} if name == "rtf" else {}
        man = read_manifest(build_manifest(name, data_root, tmp_path / "out" / name, entry, **opts))
        splits = man["split"].value_counts().to_dict()
        expected = minis.counts.get(name)
        if name == "middlebury2014":
            expected = {"train": len(entry["scenes"])}
        if name == "ilsvrc":
            expected = {"train": entry["n_images"]}
        assert splits == expected, name
    # each registry file was fetched once, from its registry URL path
    served = sorted(str(p.relative_to(minis.serve_root)) for p in minis.serve_root.rglob("*.zip"))
    assert sorted(r.lstrip("/") for r in requests) == served
    # white = blurred after reading: DUT's white-sharp masks were inverted
    from defocus.io.image import read_gray

    dut = read_manifest(tmp_path / "out" / "dut" / "manifest.csv")
    assert np.mean([read_gray(p).mean() / 255 for p in dut["gt"]]) > 0.5
    # RTF sigma came through DMENet's conversion table (RTF value 0.5 + 0.8 sigma)
    rtf = read_manifest(tmp_path / "out" / "rtf" / "manifest.csv")
    sigma = np.load(rtf["defocus"].iloc[0])
    assert sigma.min() >= 0 and sigma.max() <= 4.0 and sigma.max() > 1.0


def _snakemake(root, *args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_paper_dag_rehearsed_end_to_end(root, tmp_path, http_root):
    """config/rehearsal.yaml runs to the end; every rule of the paper DAG ran, every table
    has its rows, and the report holds every table and figure."""
    minis = build_all(tmp_path)
    host, requests = http_root(minis.serve_root)
    overlay = tmp_path / "rehearsal-local.yaml"
    overlay.write_text(yaml.safe_dump(derived_overlay(root, minis, host), sort_keys=False))
    cfgfiles = [root / "config" / "paper.yaml", overlay]
    env = {**os.environ, "TORCH_HOME": str(minis.torch_home)}
    # --replace-workflow-config: the paper config is complete; the demo's config/config.yaml
    # must not be merged under it (a dict-merge would add the demo's renders and method knobs)
    common = ("--replace-workflow-config", "--configfile", *map(str, cfgfiles))
    # the paper's test sets that the rehearsal does not score: their readers run all the same
    paper = yaml.safe_load((root / "config" / "paper.yaml").read_text())
    scored = set(merged_config(root)["test_sets"])
    extra = [f"results/data/{d}/manifest.csv" for d in paper["test_sets"] if d not in scored]
    r = _snakemake(
        root,
        "all",
        *extra,
        "--cores",
        "2",
        "--keep-going",  # every failing rule in one run
        "--show-failed-logs",
        *common,  # last: --configfile takes every argument after it
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-6000:]
    counts = {name: c.get("test", 0) for name, c in minis.counts.items()}
    check_rehearsal(root, tmp_path, cfgfiles, env, counts)
    # every registry file was fetched once, at its registry URL path
    served = sorted(str(p.relative_to(minis.serve_root)) for p in minis.serve_root.rglob("*.*"))
    assert sorted(x.lstrip("/") for x in requests) == served


def _job_stats(text: str) -> dict[str, int]:
    """Snakemake's first "Job stats" table: rule -> number of jobs."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    stats = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        stats[parts[0]] = int(parts[1])
    return stats


def executed_rules(workdir: Path) -> set[str]:
    """Rules whose jobs ran, from Snakemake's records (.snakemake/metadata, one JSON per
    output file)."""
    meta = workdir / ".snakemake" / "metadata"
    return {json.loads(p.read_text())["rule"] for p in meta.iterdir()}


def check_rehearsal(
    root: Path, workdir: Path, cfgfiles: list[Path], env: dict, test_counts: dict[str, int]
) -> None:
    """What the rehearsal must show once Snakemake has run the rehearsal config to the end
    (``test_counts``: test images of each test set's miniature)."""
    from snakemake.utils import update_config

    cfg: dict = {}
    for f in cfgfiles:
        update_config(cfg, yaml.safe_load(Path(f).read_text()))
    sm_cfg = ("--replace-workflow-config", "--configfile", *map(str, cfgfiles))
    # Snakemake's log of the run (the newest; the checks below start new ones)
    log = max((workdir / ".snakemake" / "log").glob("*.snakemake.log"), key=os.path.getmtime)
    ran_jobs = _job_stats(log.read_text())
    # the paper DAG as Snakemake plans it from config/paper.yaml itself (an empty folder)
    plan_dir = workdir / "paper-plan"
    plan_dir.mkdir(exist_ok=True)
    paper_cfg = ("--replace-workflow-config", f"--configfile={root / 'config' / 'paper.yaml'}")
    plan = _snakemake(root, "all", "-n", "--quiet", "rules", *paper_cfg, cwd=plan_dir, env=env)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    paper_jobs = _job_stats(plan.stdout + plan.stderr)
    # every rule of the paper DAG ran (the target rule "all" has no output to record)
    assert executed_rules(workdir) == set(paper_jobs) - {"all"}
    # every model of the paper DAG was trained or converted, and every weight fetched
    for rule in ("train", "fetch_weights", "fetch_weights_dmenet", "fetch_vgg19"):
        assert ran_jobs.get(rule) == paper_jobs.get(rule), rule
    # every table of the paper DAG, with its rows
    res = workdir / "results"
    methods, test_sets = cfg["methods"]["run"], cfg["test_sets"]
    t1 = pd.read_csv(res / "tables" / "table1.csv")
    pairs = sorted(zip(t1["method"], t1["dataset"], strict=True))
    assert pairs == sorted((m, d) for m in methods for d in test_sets)
    assert t1["f_beta"].between(0, 1).all() and t1["mae"].between(0, 1).all()
    assert (t1.loc[t1["method"] != "ref_all_blurred", "n_images"] > 0).all()
    expected_n = {d: test_counts[d] for d in test_sets}  # test images of the miniatures
    assert (t1["n_images"] == t1["dataset"].map(expected_n)).all()
    runtime = pd.read_csv(res / "tables" / "table_runtime.csv")
    assert set(runtime["method"]) == set(methods)
    for table in (res / "tables").glob("*.csv"):  # table_continuous: empty without RTF
        if table.stem != "table_continuous":
            assert len(pd.read_csv(table)) > 0, table.name
    feats = pd.read_csv(res / "tables" / "table_dhde_features.csv")
    assert len(feats) > 0 and feats.notna().any(axis=1).all()
    # the release model was converted, not trained; the pretrained VGG files were used
    release_log = (workdir / "logs" / "train" / "dhde@weights=release.log").read_text()
    assert "converted the release model" in release_log
    # no backbone was left at random: every learned row says what it was initialised from
    assert "random" not in set(t1["backbone_init"])
    # DeFusionNet started from torchvision's VGG16 file in TORCH_HOME: after two small steps
    # its first conv is still nearly the file's
    import torch

    ckpt = torch.load(
        res / "models" / "defusionnet" / "model.pt", map_location="cpu", weights_only=False
    )
    hub = Path(env["TORCH_HOME"]) / "hub" / "checkpoints" / "vgg16-397923af.pth"
    ref = torch.load(hub, map_location="cpu")["features.0.weight"].ravel()
    got = ckpt["model"]["backbone.0.weight"].ravel()
    assert float(torch.corrcoef(torch.stack([ref, got]))[0, 1]) > 0.9
    # the report holds every table and figure flagged for it
    report = workdir / "report.html"
    r = _snakemake(root, "--report", str(report), *sm_cfg, cwd=workdir, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    html = report.read_text(errors="replace")
    figures = sorted(p.name for p in (res / "figures").glob("*.png"))
    assert {f"pr_{d}.png" for d in test_sets} <= set(figures)
    for name in [*figures, "table1.csv", "table_runtime.csv", "table_dhde_features.csv"]:
        assert name in html, f"{name} missing from the report"
    # a second run has nothing to do
    r = _snakemake(root, "-n", "all", *sm_cfg, cwd=workdir, env=env)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr


def test_paper_run_in_a_clone_uses_the_paper_config_alone(root, tmp_path):
    """In a clone, Snakefile's `configfile: config/config.yaml` (the demo) is merged under any
    --configfile; with --replace-workflow-config the paper run plans no demo render and keeps
    the paper's method parameters (no 1/8-wide random-init backbones)."""
    import shutil

    for part in ("Snakefile", "workflow", "config"):
        src = root / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / part)
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "all", "--replace-workflow-config"]
        + ["--configfile", "config/paper.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "results/data/syndof/manifest.csv" in out
    assert "demo_syndof" not in out and '"vgg_width": 0.125' not in out
