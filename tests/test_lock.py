"""The running environment is the lock's, every prediction file names its versions, and two
runs of one config in that environment give byte-identical tables."""

import importlib.util
import json
import os
import platform
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
    assert attrs["hardware_class"] == prov.hardware_class()
    assert attrs["hardware_class"].startswith(platform.machine())


def test_hardware_class_is_the_x86_level_numpy_detects():
    from numpy._core._multiarray_umath import __cpu_features__ as features

    cls = prov.hardware_class()
    if platform.machine() == "x86_64":
        # x86-64-v4 implies v3 implies v2: the class is the highest level present
        level = int(cls.rsplit("-v", 1)[1])
        assert features[f"X86_V{level}"] and not features.get(f"X86_V{level + 1}", False)
        assert all(features[f"X86_V{k}"] for k in range(2, level))
    else:
        assert cls.startswith(platform.machine())


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


def _relock_module(root):
    spec = importlib.util.spec_from_file_location("relock", root / "requirements" / "relock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _item(name, version, url, sha=None):
    info = {"url": url, "archive_info": {"hashes": {"sha256": sha}} if sha else {}}
    return {"metadata": {"name": name, "version": version}, "download_info": info}


def test_relock_writes_sorted_hashed_pins_without_the_project(root, tmp_path):
    relock = _relock_module(root)
    report = [
        _item("PyYAML", "6.0.4", "https://files/PyYAML-6.0.4-cp311-x86_64.whl", "ab12"),
        _item("defocus_bench", "0.1.0", f"file://{root}"),  # the project: not locked
        _item("Numpy", "2.4.6", "file:///mirror/numpy-2.4.6-cp311-x86_64.whl", "cd34"),
    ]
    text, pins = relock.lock_text(report, ["torch==2.14.1", "torchvision==0.29.1"], "26.3")
    assert pins == {"numpy": "2.4.6", "pyyaml": "6.0.4"}
    assert text.index("numpy==2.4.6 \\\n    --hash=sha256:cd34") < text.index("pyyaml==6.0.4")
    assert "torch==2.14.1 torchvision==0.29.1" in text.splitlines()[1]
    (tmp_path / "lock.txt").write_text(text)
    assert prov.read_lock(tmp_path / "lock.txt") == pins
    # a file pip cannot vouch for (no sha256) stops the relock instead of an unhashed pin
    with pytest.raises(SystemExit, match="no sha256 for scipy"):
        relock.lock_text([_item("scipy", "1.17.1", "https://files/scipy.tar.gz")], [], "26.3")


def test_relock_rewrites_only_the_marked_pins_of_the_conda_env(root):
    relock = _relock_module(root)
    old = (
        "dependencies:\n  - python=3.11\n  - pip:\n"
        f"      {relock.BEGIN}\n      - numpy==1.0\n      {relock.END}\n      - -e ..\n"
    )
    new = relock.env_yaml_text(old, {"scipy": "1.17.1", "numpy": "2.4.6"})
    assert new == (
        "dependencies:\n  - python=3.11\n  - pip:\n"
        f"      {relock.BEGIN}\n      - numpy==2.4.6\n      - scipy==1.17.1\n"
        f"      {relock.END}\n      - -e ..\n"
    )
    with pytest.raises(SystemExit, match="lacks the lines"):
        relock.env_yaml_text("dependencies: []\n", {})


def test_recorded_versions_are_checked_against_the_running_environment(tmp_path, capsys):
    import h5py

    pred = tmp_path / "m" / "d.h5"
    with PredictionWriter(pred, method="m", dataset="d") as w:
        w.add("a", np.zeros((4, 5), np.float32), seconds=0.1)
    assert prov.main([str(pred)]) == 0
    assert capsys.readouterr().out == f"{pred}: same as this environment\n"
    # an output made with another numpy on another CPU class: both named, exit status 1
    with h5py.File(pred, "r+") as f:
        versions = json.loads(f.attrs["versions_json"])
        f.attrs["versions_json"] = json.dumps({**versions, "numpy": "1.26.4"})
        f.attrs["hardware_class"] = "aarch64"
    assert prov.main([str(pred)]) == 1
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"  hardware_class: recorded aarch64, running {prov.hardware_class()}",
        f"  numpy: recorded 1.26.4, running {np.__version__}",
    ]
    # a table sidecar records provenance() under "provenance"
    sidecar = tmp_path / "table1.json"
    sidecar.write_text(json.dumps({"table": "table1", "provenance": prov.provenance()}))
    assert prov.recorded_provenance(sidecar) == prov.provenance()
    assert prov.provenance_differences(prov.recorded_provenance(sidecar)) == []
    (tmp_path / "other.json").write_text("{}")
    assert prov.main([str(tmp_path / "other.json"), str(tmp_path / "absent.h5")]) == 2
    out = capsys.readouterr().out
    assert "has no 'provenance' entry" in out and "no such output" in out
