"""Workflow decisions as plain, tested functions (``workflow/rules/common.smk`` calls them):
which trained model a method spec uses, which file a release is converted from, and what a
training job reads. Nothing here touches Snakemake, so pytest covers it directly.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from defocus.config import method_params
from defocus.methods.spec import base_name, parse_name

#: the format of each authors' release file (``resources/weights/<method>/release.<ext>``)
RELEASE_EXT = {"dhde": "caffemodel", "dmenet": "npz"}


def is_learned(spec: str) -> bool:
    """Whether the method of ``spec`` is trained (or converted) before it predicts."""
    from defocus.methods.registry import method_class

    return bool(method_class(base_name(spec)).learned)


def model_name(spec: str) -> str:
    """The trained model a method spec predicts with: overrides that only change inference
    (the class's ``inference_params``, e.g. DeFusionNet's ``output``) share the base model,
    every other override trains its own (``results/models/<model_name>/model.pt``)."""
    from defocus.methods.registry import method_class

    base, _, rest = str(spec).partition("@")
    skip = getattr(method_class(base), "inference_params", ())
    keep = [i for i in rest.split(",") if i and i.partition("=")[0].strip() not in skip]
    return base + ("@" + ",".join(keep) if keep else "")


def weights_file(config: dict[str, Any], spec: str, resources: str) -> str:
    """The file a method converts instead of training ("" when it trains): its ``weights``
    parameter, ``release`` (the authors' file, fetched into ``resources``) or a path."""
    base, overrides = parse_name(spec)
    w = str({**method_params(config, spec), **overrides}.get("weights", "") or "")
    if w == "release":
        return f"{resources}/weights/{base}/release.{RELEASE_EXT.get(base, 'caffemodel')}"
    return w


def training_roles(config: dict[str, Any], spec: str) -> dict[str, list[str]]:
    """``training.data.<base name>``: {role: [dataset, ...]} (empty when not configured)."""
    return dict(config["training"]["data"].get(base_name(spec), {}) or {})


def train_input(role: str, dataset: str) -> str:
    """A training input: the patch file for role ``patches``, else the dataset's manifest."""
    if role == "patches":
        return f"results/patches/{dataset}.h5"
    return f"results/data/{dataset}/manifest.csv"


def train_data(config: dict[str, Any], spec: str, resources: str) -> dict[str, list[str]]:
    """What the training entry point gets as ``--data``: {role: [inputs]}, or
    ``{"weights": [file]}`` for a converted release. Raises ``ValueError`` when a trained
    method has no training data configured."""
    w = weights_file(config, spec, resources)
    if w:
        return {"weights": [w]}
    roles = training_roles(config, spec)
    if not roles:
        raise ValueError(
            f"method {spec} needs training data: set training.data.{base_name(spec)} in the config"
        )
    return {role: [train_input(role, d) for d in names] for role, names in roles.items()}


def uses(methods: list[str], base: str) -> bool:
    """Whether any spec of ``methods`` is the method ``base`` (or one of its ablations)."""
    return base in {base_name(m) for m in methods}


@cache
def job_defaults() -> dict[str, dict[str, int]]:
    """Each rule's built-in job size, as the schema documents it (``resources.<rule>.default``)."""
    import yaml

    from defocus.config import SCHEMA_PATH

    props = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["resources"]["properties"]
    return {rule: dict(sub.get("default") or {}) for rule, sub in props.items()}


def job_size(config: dict[str, Any], rule: str) -> dict[str, int]:
    """The job size of ``rule`` (a key of the schema's ``resources``): its built-in default,
    then the keys the config's ``resources.<rule>`` sets; ``cpus_per_task`` unset is the
    config's ``threads``."""
    defaults = job_defaults()  # cached: read once per process
    if rule not in defaults:
        known = ", ".join(sorted(defaults))
        raise KeyError(f"no job size for rule {rule!r}; the schema's resources name {known}")
    size = {**defaults[rule], **((config.get("resources") or {}).get(rule) or {})}
    size.setdefault("cpus_per_task", int(config.get("threads", 1)))
    return size
