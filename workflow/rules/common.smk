# Input and params functions shared by the stage files: rules stay declarative.
import json
import os
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError

from defocus import plan
from defocus.config import method_params
from defocus.datasets.registry import REGISTRY
from defocus.releases import get_release

SYNDOF_SETS = sorted(config["syndof"])
REGISTRY_SETS = sorted(REGISTRY)
DEMO_SETS = ["demo_sharp"]
METHODS = list(config["methods"]["run"])
TEST_SETS = list(config["test_sets"])
RESOURCES = config["resources_dir"]


def job_threads(rule):
    """Threads of a `rule` job: config resources.<rule>.cpus_per_task, else its built-in
    value (the schema's resources.<rule>.default), else config `threads`."""
    return plan.job_size(config, rule)["cpus_per_task"]


def job_resources(rule, gpu=None):
    """The resources of a `rule` job (size from defocus.plan.job_size), memory and run time
    multiplied by the attempt; `gpu` (a number or a function of the wildcards) only for jobs
    that may use one."""
    size = plan.job_size(config, rule)
    out = dict(
        mem_mb=lambda wc, attempt: attempt * size["mem_mb"],
        runtime=lambda wc, attempt: attempt * size["runtime"],
        cpus_per_task=lambda wc, threads: threads,
    )
    if gpu is not None:
        out["gpu"] = gpu
    return out


def alternatives(names):
    """A regex matching exactly one of ``names`` (never matches when empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


def _check_config():
    """Every dataset, method, folder and method-parameter name of the config, checked before
    the DAG is built: one short line per problem, naming the key (defocus.config)."""
    from defocus.config import config_errors

    errors = config_errors(
        config,
        datasets=set(SYNDOF_SETS) | set(REGISTRY_SETS) | set(DEMO_SETS),
        test_datasets=set(SYNDOF_SETS) | set(REGISTRY_SETS),
        made_folders=("results/exports",),
    )
    if errors:  # the messages alone, without a traceback
        sys.exit("\n".join(errors))


_check_config()


# External methods: released result maps, imported by rule import_external.
EXTERNAL = sorted(config["external_methods"])
# the predict rule must not claim these names; {method} may not start with "<external name>/"
NOT_EXTERNAL = rf"(?!(?:{alternatives(EXTERNAL)})/)[^/]+"


def _check_external():
    from defocus.config import external_config_errors

    errors = external_config_errors(config, METHODS)
    if errors:
        raise WorkflowError("invalid external_methods:\n  " + "\n  ".join(errors))


_check_external()


def external_cfg(name):
    """The config entry of an external method, defaults filled."""
    entry = dict(config["external_methods"][name])
    entry.setdefault("polarity", "white_blurred")
    entry.setdefault("index_map", None)
    entry.setdefault("allow_subset", False)
    entry.setdefault("interpolation", "bilinear")
    return entry


def external_maps_input(wildcards):
    """The maps folder of an external method on one dataset (rule export_maps makes
    results/exports/... folders; any other folder must exist)."""
    maps = external_cfg(wildcards.method)["maps"]
    if wildcards.dataset not in maps:
        raise WorkflowError(
            f"external_methods.{wildcards.method}.maps names no folder for dataset "
            f"{wildcards.dataset}; it names {sorted(maps)}"
        )
    return os.path.normpath(maps[wildcards.dataset])


def external_pairs(datasets=None):
    """(external method, dataset) for every test set an external method has maps for."""
    datasets = datasets or TEST_SETS
    return [
        (m, d)
        for m in EXTERNAL
        for d in datasets
        if d in config["external_methods"][m]["maps"]
    ]


def manifest(dataset):
    return f"results/data/{dataset}/manifest.csv"


def dataset_cfg(name):
    """The config entry of a registry dataset (defaults when the config names none)."""
    entry = dict(config["datasets"].get(name) or {})
    parent = REGISTRY[name].part_of if name in REGISTRY else ""
    if parent and not entry.get("root"):  # a part reads its parent's copy
        entry["root"] = (config["datasets"].get(parent) or {}).get("root")
    entry.setdefault("root", None)
    # DMENet's RTF table, fetched by rule fetch_rtf_conversion
    if entry.get("conversion") == "release":
        entry["conversion"] = RTF_CONVERSION
    entry.setdefault("polarity", None)
    entry.setdefault("sha256", {})
    entry.setdefault("base_url", None)
    return entry


def root_fingerprint(wildcards):
    """Fingerprint (file names, sizes, mtimes) of a user's `datasets.<name>.root` copy, as a
    param of the registry_manifest rule. Any added, removed or edited file changes the param,
    and Snakemake rebuilds the manifest and everything downstream ("" for downloaded copies,
    whose .fetched.json marker is an input)."""
    from defocus.io.manifest import folder_fingerprint

    root = dataset_cfg(wildcards.dataset)["root"]
    return folder_fingerprint(root) if root else ""


#: DMENet's RTF conversion table, fetched for `datasets.<name>.conversion: release`
RTF_CONVERSION = f"{RESOURCES}/{get_release('rtf_conversion').output}"


def fetch_input(wildcards):
    """The download marker (nothing when the user points `datasets.<name>.root` at a copy),
    then the RTF conversion table when the config asks for the released one."""
    entry = dataset_cfg(wildcards.dataset)
    extra = [RTF_CONVERSION] if entry.get("conversion") == RTF_CONVERSION else []
    if entry["root"]:
        return extra
    name = REGISTRY[wildcards.dataset].part_of or wildcards.dataset
    return [f"{RESOURCES}/{name}/.fetched.json", *extra]


def render_gpu(wildcards):
    """GPUs of a SYNDOF render job: 1 for the torch backend when device != cpu."""
    cfg = config["syndof"][wildcards.dataset]
    return int(cfg.get("backend") == "torch" and config["device"] != "cpu")


def syndof_depth_manifests(wildcards):
    """Manifests of the real depth datasets a SYNDOF set renders from (demo sources need none)."""
    sources = config["syndof"][wildcards.dataset]["sources"]
    return [manifest(s) for s in sources if not s.startswith("demo_")]


def is_learned(method):
    return plan.is_learned(method)


def model_name(method):
    """The trained model a method spec predicts with (defocus.plan.model_name)."""
    return plan.model_name(method)


def checkpoint_input(wildcards):
    if is_learned(wildcards.method):
        return f"results/models/{model_name(wildcards.method)}/model.pt"
    return []


def summaries(datasets=None, methods=None):
    out = expand(
        "results/metrics/{method}/{dataset}.summary.json",
        method=methods or METHODS,
        dataset=datasets or TEST_SETS,
    )
    if methods is None:  # external rows only where the method has maps for the dataset
        out += [
            f"results/metrics/{m}/{d}.summary.json" for m, d in external_pairs(datasets)
        ]
    return out


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
    # each paper's own scoring (rule protocols_table)
    if config["evaluation"]["tabulate"]:
        out += ["results/tables/table_protocols.csv", "results/figures/protocols.png"]
    if plan.uses(METHODS, "dhde"):
        out += [
            "results/tables/table_dhde_features.csv",
            "results/figures/dhde_features.png",
        ]
    return out


def extra_tables():
    """Tables made by other rules, listed in results/tables/README.md: (file, paper table, what)."""
    out = []
    if plan.uses(METHODS, "dhde"):
        out.append(
            (
                "table_dhde_features",
                "Park et al. CVPR'17 Table 1",
                "edge-patch classification accuracy (tolerance 0.15 in sigma) per feature set, "
                "on held-out and on training source images",
            )
        )
    return out


def train_input(role, dataset):
    """A training input: the patch file for role `patches`, else the dataset's manifest."""
    return plan.train_input(role, dataset)


def weights_file(method):
    """The file a method converts instead of training ("" when it trains)."""
    return plan.weights_file(config, method, RESOURCES)


#: the DMENet authors' Caffe VGG19 for `vgg_weights = release` (registry defocus.releases,
#: fetched by rule fetch_vgg19)
VGG19_RELEASE = f"{RESOURCES}/{get_release('vgg19').output}"


def run_params(method):
    """Method parameters as the training entry point gets them: `vgg_weights: release` names
    the file rule fetch_vgg19 downloads."""
    params = method_params(config, method)
    if params.get("vgg_weights") == "release":
        params["vgg_weights"] = VGG19_RELEASE
    return params


def train_manifests(wildcards):
    """Inputs of every dataset the method trains on (config training.data.<method>), or the
    weights file it converts; and the released VGG19 it starts from, if any."""
    if weights_file(wildcards.method):
        return [weights_file(wildcards.method)]
    roles = plan.training_roles(config, wildcards.method)
    out = sorted({train_input(r, d) for r, names in roles.items() for d in names})
    if run_params(wildcards.method).get("vgg_weights") == VGG19_RELEASE:
        out.append(VGG19_RELEASE)
    return out


def train_data_arg(wildcards):
    """--data of the training entry point: JSON {role: [manifest paths]}, shell-quoted."""
    try:
        data = plan.train_data(config, wildcards.method, RESOURCES)
    except ValueError as e:
        raise WorkflowError(str(e)) from None
    return shlex.quote(json.dumps(data))


# The interpreter of training jobs: this Snakemake's, unless DEFOCUS_PYTHON names another.
# It reaches the shell command through the environment, not as a param, so a Snakemake
# started from another python (a fresh venv of the same lock) does not re-run the training.
os.environ.setdefault("DEFOCUS_PYTHON", sys.executable)


def train_launcher(wildcards):
    """Arguments between the interpreter and `-m defocus.train`: torch.distributed.run when
    training.nproc > 1 (DDP; gloo on the CPU), else none."""
    n = config["training"]["nproc"]
    if n > 1:
        return f"-m torch.distributed.run --standalone --nproc_per_node {n} "
    return ""


def train_gpus(wildcards):
    """GPUs of a training job: training.nproc when device != cpu."""
    return config["training"]["nproc"] if config["device"] != "cpu" else 0


def predict_gpu(wildcards):
    """GPUs of a predict job: 1 for a learned method when device != cpu."""
    return int(is_learned(wildcards.method) and config["device"] != "cpu")


def figure_methods(dataset):
    """Methods drawn in a dataset's figures: the configured ones, then external rows."""
    return METHODS + [m for m, d in external_pairs([dataset])]


def figure_inputs(pattern):
    """Input function: `pattern` (with {method} and {dataset}) for every figure method."""

    def inputs(wildcards):
        return [
            pattern.format(method=m, dataset=wildcards.dataset)
            for m in figure_methods(wildcards.dataset)
        ]

    return inputs
