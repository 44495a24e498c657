"""The running environment is the lock's, every prediction file names its versions, and two
runs of one config in that environment give byte-identical tables."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from defocus import provenance as prov
from defocus.io.predictions import PredictionWriter, read_attrs

FIX = "run `make venv` (or `.venv/bin/pip install -r requirements/lock.txt`)"


def test_environment_matches_the_lock(root):
    if os.environ.get(prov.ALLOW_DRIFT_ENV) == "1":
        pytest.skip(f"{prov.ALLOW_DRIFT_ENV}=1: versions may differ from requirements/lock.txt")
    drift = prov.lock_drift(root / "requirements" / "lock.txt")
    assert not drift, (
        f"this environment differs from requirements/lock.txt in {len(drift)} package(s):\n  "
        + "\n  ".join(drift)
        + f"\n{FIX} to get the locked versions, or set {prov.ALLOW_DRIFT_ENV}=1 to run on "
        "these (the numbers may then differ from the published tables)"
    )


def test_lock_drift_names_each_missing_or_moved_package():
    lock = {"numpy": "2.4.6", "opencv-contrib-python-headless": "5.0.0.93", "scipy": "1.17.1"}
    installed = {"numpy": "2.4.6", "opencv-contrib-python-headless": "5.1.0.95", "extra": "1"}
    assert prov.lock_drift(lock, installed) == [
        "opencv-contrib-python-headless: locked 5.0.0.93, installed 5.1.0.95",
        "scipy: locked 1.17.1, installed nothing",
    ]
    # packages outside the lock do not count; an exact match is no drift
    assert prov.lock_drift(lock, {**lock, "extra": "1"}) == []


def test_read_lock_takes_pins_and_skips_hashes_and_comments(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# header\n"
        "PyYAML==6.0.4 \\\n    --hash=sha256:ab12\n    # PyYAML-6.0.4.whl\n"
        "\n"
        "opencv_contrib_python_headless==5.1.0.95 \\\n    --hash=sha256:cd34\n"
    )
    assert prov.read_lock(lock) == {"pyyaml": "6.0.4", "opencv-contrib-python-headless": "5.1.0.95"}
    lock.write_text("numpy>=2\n")
    with pytest.raises(ValueError, match=r"lock.txt:1: expected 'name==version'"):
        prov.read_lock(lock)
    with pytest.raises(FileNotFoundError, match="make lock"):
        prov.read_lock(tmp_path / "absent.txt")


def test_installed_versions_sees_this_environment():
    have = prov.installed_versions()
    assert have["numpy"] == np.__version__
    assert have["pyyaml"]  # canonical names: PyYAML is found as pyyaml


def test_prediction_file_records_versions_and_commit(tmp_path):
    import cv2
    import torch

    path = tmp_path / "m" / "d.h5"
    with PredictionWriter(path, method="m", dataset="d") as w:
        w.add("a", np.zeros((4, 5), np.float32), seconds=0.1)
    attrs = read_attrs(path)
    versions = json.loads(attrs["versions_json"])
    assert versions == prov.provenance()
    assert attrs["git_commit"] == versions["git_commit"] != ""
    assert attrs["version_numpy"] == np.__version__
    # torch.__version__ carries the local build tag (2.14.1+cu130), the wheel's metadata not
    assert attrs["version_torch"] == torch.__version__.split("+")[0]
    assert attrs["version_opencv"].startswith(cv2.__version__)
    assert attrs["version_python"] == ".".join(map(str, sys.version_info[:3]))
    for name in ("scipy", "skimage", "sklearn", "pymatting", "pyamg", "torchvision"):
        assert attrs[f"version_{name}"] not in ("", "absent"), name


def _tiny_run(root, workdir):
    workdir.mkdir()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(root / "Snakefile"),
            "--cores",
            "2",
            f"--configfile={root / 'config' / 'test.yaml'}",
            "results/tables/table1.csv",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return workdir / "results"


@pytest.mark.slow
def test_two_runs_give_byte_identical_table1(root, tmp_path):
    first = _tiny_run(root, tmp_path / "first")
    second = _tiny_run(root, tmp_path / "second")
    a = (first / "tables" / "table1.csv").read_bytes()
    b = (second / "tables" / "table1.csv").read_bytes()
    assert a == b, f"table1.csv differs between two runs:\n{a.decode()}\n---\n{b.decode()}"
    # the tables were made from prediction files that name the versions that made them
    recorded = json.loads(
        read_attrs(first / "predictions" / "zeng" / "demo_syndof.h5")["versions_json"]
    )
    assert recorded.pop("git_commit")
    assert recorded == prov.package_versions()
