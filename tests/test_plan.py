"""Workflow decisions (defocus.plan): which model each spec uses, what training reads."""

import pytest

from defocus import plan
from defocus.config import load_config


@pytest.fixture(scope="module")
def paper(root):
    return load_config(root / "config" / "paper.yaml")


def test_which_ablations_share_a_trained_model(paper):
    models = {m: plan.model_name(m) for m in paper["methods"]["run"] if plan.is_learned(m)}
    # DeFusionNet's output=k reads another head of the same network (inference only) ...
    for k in range(1, 7):
        assert models[f"defusionnet@output={k}"] == "defusionnet"
    # ... every other override trains its own model
    assert models["defusionnet@steps=1"] == "defusionnet@steps=1"
    assert models["defusionnet@ffrm=false"] == "defusionnet@ffrm=false"
    assert models["dmenet@subnets=B"] == "dmenet@subnets=B"
    assert models["dhde@weights=release"] == "dhde@weights=release"
    shared = {}
    for spec, model in models.items():
        shared.setdefault(model, []).append(spec)
    assert sorted(len(v) for v in shared.values())[-1] == 7  # defusionnet + its 6 outputs
    assert not plan.is_learned("hifst") and not plan.is_learned("ref_gradient")


def test_release_weights_and_training_data(paper):
    assert plan.weights_file(paper, "dhde@weights=release", "res") == (
        "res/weights/dhde/release.caffemodel"
    )
    assert plan.weights_file(paper, "dmenet@weights=release", "res") == (
        "res/weights/dmenet/release.npz"
    )
    assert plan.weights_file(paper, "dhde", "res") == ""
    assert plan.train_data(paper, "dhde@weights=release", "res") == {
        "weights": ["res/weights/dhde/release.caffemodel"]
    }
    dhde = plan.train_data(paper, "dhde@features=fC", "res")
    assert dhde == {"patches": ["results/patches/ilsvrc.h5"]}
    cfg = {**paper, "training": {**paper["training"], "data": {}}}
    with pytest.raises(ValueError, match="training.data.zeng"):
        plan.train_data(cfg, "zeng", "res")
    assert plan.uses(["hifst", "dhde@weights=release"], "dhde")
    assert not plan.uses(["hifst", "dhdex"], "dhde")
