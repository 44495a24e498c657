"""What each table row is: method fidelity, provenance of a trained checkpoint, registry
import errors, constant maps, and the provenance carried by prediction files into tables."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from defocus.evaluate.evaluate import evaluate_file
from defocus.evaluate.tables import table1
from defocus.io.image import write_image
from defocus.io.manifest import write_manifest
from defocus.io.predictions import PredictionWriter
from defocus.methods import registry
from defocus.methods.base import (
    IMPLEMENTATIONS,
    Fidelity,
    Method,
    count_training_images,
    minmax_normalise,
)


def test_every_registered_method_declares_its_fidelity():
    for name in registry.available():
        cls = registry.method_class(name)
        assert "fidelity" in cls.__dict__, f"{name} does not declare fidelity"
        f = cls.fidelity
        assert isinstance(f, Fidelity) and f.implementation in IMPLEMENTATIONS
        assert f.differs and "\n" not in f.differs, name
        assert (f.implementation == "reference") == bool(cls.reference), name
    with pytest.raises(ValueError, match="implementation must be one of"):
        Fidelity("inspired", "x")


class _Toy(Method):
    name = "toy_learned"
    learned = True
    fidelity = {"implementation": "faithful", "differs": "nothing", "paper_images": 604}
    defaults = {"iterations": 20000, "pretrained": True, "max_train_images": 0}


def _manifest(tmp_path, n_train):
    rows = [{"id": f"t{i}", "split": "train", "image": "x.png", "gt": ""} for i in range(n_train)]
    rows.append({"id": "s0", "split": "test", "image": "x.png", "gt": ""})
    write_manifest(rows, tmp_path / "data" / "manifest.csv")
    return tmp_path / "data" / "manifest.csv"


def test_provenance_of_a_trained_checkpoint(tmp_path):
    import torch

    from defocus.train.loop import save_checkpoint

    manifest = _manifest(tmp_path, 4)
    m = _Toy(pretrained=False)
    data = {"train": [str(manifest)]}
    record = m.training_record(data)
    assert record["backbone_init"] == "random" and record["n_train_images"] == 4
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, {"model": {"w": torch.zeros(1)}, "iteration": 300, "metadata": record})
    prov = m.provenance(ckpt)
    assert prov["training"] == "300/20000 it, 4/604 img"
    assert (prov["weights"], prov["backbone_init"]) == ("trained here", "random")
    assert prov["implementation"] == "faithful" and not prov["paper_scale"]
    assert not prov["faithful"]
    # at the paper's scale with an ImageNet backbone the row is faithful
    big = {"backbone_init": "imagenet", "n_train_images": 604}
    save_checkpoint(ckpt, {"model": {}, "iteration": 20000, "metadata": big})
    prov = _Toy().provenance(ckpt)
    assert prov["training"] == "20000/20000 it, 604/604 img" and prov["faithful"]
    # max_train_images caps the count
    assert count_training_images(data, max_images=3) == 3
    assert count_training_images({"train": [str(tmp_path / "absent.csv")]}) is None


def test_provenance_of_release_and_classic_methods(tmp_path):
    from defocus.methods.registry import get_method

    # an authors' file is not read as a checkpoint of this package
    caffemodel = tmp_path / "DHDE_model.caffemodel"
    caffemodel.write_bytes(b"not a torch file")
    rel = get_method("dhde@weights=release").provenance(caffemodel)
    assert (rel["weights"], rel["backbone_init"], rel["training"]) == (
        "authors' release",
        "authors' release",
        "authors' release",
    )
    svd = get_method("svd").provenance()
    assert (svd["weights"], svd["backbone_init"], svd["training"]) == ("none", "n/a", "n/a")
    assert svd["faithful"]
    ref = get_method("ref_gradient").provenance()
    assert ref["implementation"] == "reference" and not ref["faithful"]


def test_constant_map_normalises_to_undecided():
    assert minmax_normalise(np.full((3, 4), 2.5)).tolist() == np.full((3, 4), 0.5).tolist()


def test_import_error_of_a_method_module_is_reported(tmp_path, monkeypatch):
    pkg = tmp_path / "brokenpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            raise ImportError("libfoo.so.3: cannot open shared object file")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry._REGISTRY, "broken_method", "brokenpkg.bad:Broken")
    with pytest.raises(registry.MethodImportError) as info:
        registry.get_method("broken_method")
    msg = str(info.value)
    assert "libfoo.so.3" in msg and "Traceback" in msg and "brokenpkg/bad.py" in msg
    assert "unknown method" not in msg
    sys.modules.pop("brokenpkg.bad", None)


def test_import_error_of_a_method_package_is_reported(monkeypatch):
    # the classic package fails to import: its names are not "unknown", the error is shown
    monkeypatch.setitem(sys.modules, "defocus.methods.classic", None)
    saved = {k: v for k, v in registry._REGISTRY.items() if ".classic." in v}
    for k in saved:
        monkeypatch.delitem(registry._REGISTRY, k)
    with pytest.raises(registry.MethodImportError) as info:
        registry.method_class("lbp")
    assert "defocus.methods.classic" in str(info.value)
    assert "unknown method" not in str(info.value)
    monkeypatch.delitem(sys.modules, "defocus.methods.classic")
    registry._PACKAGE_ERRORS.clear()


def _scored(tmp_path, maps, method="svd", prov=None, device="cpu"):
    data = tmp_path / "data"
    rows = []
    rng = np.random.default_rng(0)
    for i in range(len(maps)):
        gt = rng.random((8, 8)) < 0.6
        write_image(data / f"g{i}.png", (gt * 255).astype(np.uint8))
        rows.append({"id": f"i{i}", "split": "test", "image": f"g{i}.png", "gt": f"g{i}.png"})
    write_manifest(rows, data / "manifest.csv")
    manifest = data / "manifest.csv"
    pred = tmp_path / "pred" / method / "demo.h5"
    config = {"method": method, "params": {}, "checkpoint": ""}
    with PredictionWriter(pred, method=method, dataset="demo", config=config, device=device) as w:
        for i, m in enumerate(maps):
            w.add(f"i{i}", m, seconds=0.1)
        if prov is not None:
            w.attrs.update({"provenance_json": json.dumps(prov)})
    return pred, manifest


def test_no_evidence_is_flagged_and_logged(tmp_path, caplog):
    flat = np.full((8, 8), 0.5, np.float32)
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    pred, manifest = _scored(tmp_path, [ramp, flat])
    with caplog.at_level("WARNING"):
        per_image, _, summary = evaluate_file(pred, manifest, "test", {"n_bootstrap": 10})
    assert per_image["no_evidence"].tolist() == [False, True]
    assert summary["n_no_evidence"] == 1
    assert any("i1" in r.getMessage() and "no evidence" in r.getMessage() for r in caplog.records)
    csv = tmp_path / "m.csv"
    per_image.to_csv(csv, index=False)
    assert pd.read_csv(csv)["no_evidence"].tolist() == [False, True]


def test_prediction_provenance_reaches_table1(tmp_path):
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    prov = {
        "implementation": "faithful",
        "weights": "trained here",
        "backbone_init": "random",
        "training": "300/10000 it, 4/604 img",
        "paper_scale": False,
        "faithful": False,
        "differs": "x",
    }
    pred, manifest = _scored(tmp_path / "a", [ramp], method="defusionnet", prov=prov)
    _, _, s1 = evaluate_file(pred, manifest, "test", {"n_bootstrap": 10})
    # a file without the attribute: rebuilt from its config and the method class
    pred2, manifest2 = _scored(tmp_path / "b", [ramp], method="svd")
    _, _, s2 = evaluate_file(pred2, manifest2, "test", {"n_bootstrap": 10})
    # released maps
    pred3, manifest3 = _scored(tmp_path / "c", [ramp], method="btbnet", device="external")
    _, _, s3 = evaluate_file(pred3, manifest3, "test", {"n_bootstrap": 10})
    t = table1([s1, s2, s3]).set_index("method")
    assert t.loc["defusionnet", "training"] == "300/10000 it, 4/604 img"
    assert t.loc["defusionnet", "backbone_init"] == "random"
    assert not t.loc["defusionnet", "faithful_at_paper_scale"]
    assert t.loc["svd", "implementation"] == "faithful" and t.loc["svd", "weights"] == "none"
    assert bool(t.loc["svd", "faithful_at_paper_scale"])
    assert t.loc["btbnet", "implementation"] == "external"
    assert t.loc["btbnet", "weights"] == "external maps"


def test_training_images_of_a_patch_file_leave_out_held_out_sources(tmp_path):
    import h5py

    path = tmp_path / "patches.h5"
    with h5py.File(path, "w") as f:
        f.attrs["sources"] = json.dumps(["a", "b", "c", "d"])
        f.attrs["val_sources"] = json.dumps(["d"])
    manifest = _manifest(tmp_path, 2)
    # three training sources of the patch file + two train rows of the manifest
    assert count_training_images({"patches": [str(path)], "train": [str(manifest)]}) == 5
    # a manifest named under two roles counts once; a converted weights file not at all
    data = {"a": [str(manifest)], "b": [str(manifest)], "weights": ["x.caffemodel"]}
    assert count_training_images(data) == 2


def test_defocus_methods_lists_implementation_and_differences(capsys):
    from defocus.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "ss" in out and "reconstruction" in out
    svd = registry.method_class("svd").fidelity
    assert svd.differs in out and "differs from the paper:" in out


def test_a_speed_option_away_from_its_faithful_value_labels_the_row():
    from defocus.methods.classic.hifst import HiFST
    from defocus.methods.classic.zhuo_sim import ZhuoSim

    exact = HiFST().provenance()
    assert exact["implementation"] == "faithful" and exact["faithful"]
    strided = HiFST(stride=4).provenance()
    assert strided["implementation"] == "substitute" and not strided["faithful"]
    assert strided["differs"].startswith("speed option stride=4 (faithful: 1); ")
    # zhuo_sim's default solves at half size (the demo); the paper config's full size is faithful
    assert ZhuoSim().provenance()["implementation"] == "substitute"
    assert ZhuoSim(matting_scale=1.0).provenance()["implementation"] == "faithful"
    # dbdf is a substitute either way; its grid stride is named in what differs
    from defocus.methods.classic.dbdf import DBDF

    assert DBDF().provenance()["differs"].startswith("speed option stride=4 (faithful: 1); ")
    assert not DBDF(stride=1).provenance()["differs"].startswith("speed option")
