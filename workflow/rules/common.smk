# Input and params functions shared by the stage files: rules stay declarative.
import re

from snakemake.exceptions import WorkflowError

from defocus.config import method_params
from defocus.datasets.registry import DATASETS as REGISTRY

SYNDOF_SETS = sorted(config["syndof"])
REGISTRY_SETS = sorted(REGISTRY)
DEMO_SETS = ["demo_sharp"]
METHODS = list(config["methods"]["run"])
TEST_SETS = list(config["test_sets"])
RESOURCES = config["resources_dir"]


def _alternatives(names):
    """A regex matching exactly one of ``names`` (never matches when empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    method=r"[^/]+",
    registry_set=_alternatives(REGISTRY_SETS),
    syndof_set=_alternatives(SYNDOF_SETS),


def _check_test_sets():
    known = set(SYNDOF_SETS) | set(REGISTRY_SETS)
    unknown = [d for d in TEST_SETS if d not in known]
    if unknown:
        raise WorkflowError(
            f"test_sets names unknown dataset(s) {unknown}; known: registry "
            f"{REGISTRY_SETS} and syndof {SYNDOF_SETS} (config key `syndof`)"
        )


_check_test_sets()


def manifest(dataset):
    return f"results/data/{dataset}/manifest.csv"


def dataset_cfg(name):
    """The config entry of a registry dataset (defaults when the config names none)."""
    entry = dict(config["datasets"].get(name) or {})
    entry.setdefault("root", None)
    entry.setdefault("polarity", None)
    entry.setdefault("sha256", {})
    return entry


def fetch_input(wildcards):
    """The download marker, or nothing when the user points `datasets.<name>.root` at a copy."""
    if dataset_cfg(wildcards.registry_set)["root"]:
        return []
    return f"{RESOURCES}/{wildcards.registry_set}/.fetched.json"


def syndof_depth_manifests(wildcards):
    """Manifests of the real depth datasets a SYNDOF set renders from (demo sources need none)."""
    sources = config["syndof"][wildcards.syndof_set]["sources"]
    return [manifest(s) for s in sources if not s.startswith("demo_")]


def is_learned(method):
    from defocus.methods.registry import method_class

    return method_class(method.partition("@")[0]).learned


def checkpoint_input(wildcards):
    if is_learned(wildcards.method):
        return f"results/models/{wildcards.method}/model.pt"
    return []


def summaries(datasets=None, methods=None):
    return expand(
        "results/metrics/{method}/{dataset}.summary.json",
        method=methods or METHODS,
        dataset=datasets or TEST_SETS,
    )


def get_final_output():
    out = [
        "results/tables/table1.csv",
        "results/tables/table_runtime.csv",
        "results/tables/README.md",
    ]
    out += expand("results/figures/pr_{dataset}.png", dataset=TEST_SETS)
    out += expand("results/figures/fmeasure_{dataset}.png", dataset=TEST_SETS)
    out += expand("results/figures/qualitative_{dataset}.png", dataset=TEST_SETS)
    out += expand("results/figures/syndof_{name}.png", name=SYNDOF_SETS)
    return out
