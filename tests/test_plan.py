"""Workflow decisions (defocus.plan): which model each spec uses, what training reads."""

import re
from pathlib import Path

import pytest

from defocus import plan
from defocus.config import load_config

ROOT = Path(__file__).resolve().parents[1]


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


def test_job_size_defaults_come_from_the_schema_and_config_keys_replace_them():
    cfg = {"threads": 3, "resources": {"predict": {"mem_mb": 123}}}
    size = plan.job_size(cfg, "predict")
    # mem_mb from the config, runtime from the schema's default, cpus from `threads`
    assert size == {"mem_mb": 123, "runtime": 360, "cpus_per_task": 3}
    assert plan.job_size({"threads": 3}, "evaluate")["cpus_per_task"] == 1
    with pytest.raises(KeyError, match="no job size"):
        plan.job_size(cfg, "no_such_rule")


def test_every_rule_sizes_its_job_through_one_documented_key():
    """Each rule's threads and resources come from job_threads/job_resources with a key the
    schema documents, and every documented key is used by some rule."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    # named rules, and the one rule a loop defines per release (`rule:` + `name:`)
    n_rules = len(re.findall(r"^\s*rule(?: \w+)?:", text, flags=re.M))
    threads = re.findall(r'threads: job_threads\("(\w+)"\)', text)
    sized = re.findall(r'\*\*job_resources\("(\w+)"', text)
    assert "lookup(dpath=" not in text
    # every rule of the stage files declares both (`all`, in the Snakefile, runs no job)
    assert len(threads) == len(sized) == n_rules
    defaults = plan.job_defaults()
    assert set(sized) == set(defaults), "a documented job size no rule uses, or the reverse"
    for key, size in defaults.items():
        assert {"mem_mb", "runtime"} <= set(size), key


def test_parameter_bounds_are_checked_and_hold_the_defaults():
    from defocus.config import COMMON_BOUNDS, in_interval, method_param_errors, parse_interval
    from defocus.methods.registry import available, method_class

    assert parse_interval("[0, 1)") == (0.0, True, 1.0, False)
    assert parse_interval("(0, inf)") == (0.0, False, float("inf"), False)
    assert in_interval(0.0, "[0, 1)") and not in_interval(1.0, "[0, 1)")
    assert in_interval(1.0, "(0, 1]") and not in_interval(0.0, "(0, 1]")
    with pytest.raises(ValueError, match="not an interval"):
        parse_interval("0..1")
    # every declared interval is well formed and holds its method's default
    for name in available():
        cls = method_class(name)
        for key, text in {**COMMON_BOUNDS, **cls.bounds}.items():
            if key in cls.defaults:
                assert in_interval(cls.defaults[key], text), (name, key, text)
        assert set(cls.bounds) <= set(cls.defaults), name
    # a value outside its interval is one line naming the key and the interval
    errors = method_param_errors("defusionnet", {"momentum": 1.5, "lr": 0}, "methods.params.x")
    assert errors == [
        "config key methods.params.x.momentum: 1.5 must be in [0, 1)",
        "config key methods.params.x.lr: 0 must be in (0, inf)",
    ]
    assert method_param_errors("zhuo_sim", {"matting_scale": 2.0}, "w") == [
        "config key w.matting_scale: 2.0 must be in (0, 1]"
    ]
    assert method_param_errors("zhuo_sim", {"matting_scale": 1.0}, "w") == []


def test_the_schema_names_exactly_the_registered_methods():
    """The schema's method-name pattern and the registry list the same methods."""
    import yaml

    from defocus.config import SCHEMA_PATH
    from defocus.methods.registry import available

    pattern = yaml.safe_load(SCHEMA_PATH.read_text())["definitions"]["method_name"]["pattern"]
    names = re.match(r"^\^\(([^)]*)\)", pattern).group(1).split("|")
    assert sorted(names) == sorted(available())
    assert re.match(pattern, "hifst@stride=4") and not re.match(pattern, "nosuch")


def test_the_paper_config_runs_every_speed_option_at_its_faithful_value(paper):
    # config/paper.yaml is the full reproduction: no row of it may carry a speed approximation
    # (a class's faithful_params), while the demo's defaults may
    from defocus.config import method_params
    from defocus.methods.registry import get_method

    checked = 0
    for spec in paper["methods"]["run"]:
        method = get_method(spec, method_params(paper, spec))
        off = {
            k: method.params.get(k)
            for k, v in type(method).faithful_params.items()
            if method.params.get(k) != v
        }
        assert not off, f"{spec} runs {off} in config/paper.yaml"
        checked += bool(type(method).faithful_params)
    assert checked >= 4  # hifst, zhuo_sim, dbdf, dhde (and its ablations)
