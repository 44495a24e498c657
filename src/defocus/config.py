"""Configuration: the JSON schema (``src/defocus/schema.yaml``, package data; the repository's
``config/schema.yaml`` links to it) with defaults filled.

The Snakefile validates with ``snakemake.utils.validate`` (which fills defaults the same way);
this module does the same for the command line and tests without importing Snakemake.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

#: the schema ships inside the package, so a wheel install validates configs too
SCHEMA_PATH = Path(__file__).resolve().with_name("schema.yaml")

#: longest image side (px) a method sees in ``predict`` (config ``methods.max_side``, CLI
#: ``--max-side``); larger images are shrunk for the method and the map resized back
DEFAULT_MAX_SIDE = 2048


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def _validator_with_defaults(schema: dict):
    import jsonschema

    base = jsonschema.validators.validator_for(schema)

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def validate(config: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Validate ``config`` in place against the schema, filling defaults; return it.

    Raises :class:`ConfigError` with the first error's path and message.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _validator_with_defaults(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
    if errors:
        raise ConfigError(schema_error_message(errors[0]))
    return config


def schema_error_message(error: Any) -> str:
    """One line ``config key X: message`` for a jsonschema ``ValidationError``.

    jsonschema's own text of a failed ``pattern`` or ``enum`` quotes the whole pattern and
    Snakemake's ``validate`` adds the whole schema; this names the key, the bad value and,
    from the schema, what is allowed.
    """
    where = ".".join(str(p) for p in error.path)
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = (
            sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        )
        keys = ", ".join(f"{where}.{k}" if where else str(k) for k in extra) or where
        hint = f"; known keys here: {', '.join(allowed)}" if allowed else ""
        return f"config key {keys}: unknown key (misspelt?){hint}"
    if kind == "pattern":
        what = (error.schema.get("description") or "").strip().split(". ")[0]
        return f"config key {where}: {error.instance!r} does not match the allowed form" + (
            f" ({what})" if what else ""
        )
    if kind == "enum":
        return f"config key {where}: {error.instance!r} is not one of {error.validator_value}"
    if kind == "required":
        return f"config key {where or '<top level>'}: {error.message}"
    return f"config key {where or '<top level>'}: {error.message}"


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file and validate it (defaults filled)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    cfg = yaml.safe_load(path.read_text()) or {}
    return validate(cfg)


def method_params(config: dict, spec: str) -> dict[str, Any]:
    """``methods.params[<base name>]`` of a method spec; ablation overrides apply later."""
    from defocus.methods.spec import base_name

    base = base_name(spec)
    return dict(config.get("methods", {}).get("params", {}).get(base, {}) or {})


def resolve_device(requested: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu`` (imports torch lazily)."""
    if requested != "auto":
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def evaluation_protocol(evaluation: dict[str, Any], seed: int, dataset: str) -> dict[str, Any]:
    """The keyword protocol of :func:`defocus.evaluate.evaluate.evaluate_file` from config.

    RTF's continuous GT is clipped at ``rtf_sigma_clip`` and divided by it (DMENet's
    evaluation/RTF code); other datasets' continuous maps are compared in pixels.
    """
    protocol = {
        "beta2": evaluation["beta2"],
        "n_thresholds": evaluation["n_thresholds"],
        "averaging": evaluation["averaging"],
        "positive": evaluation["positive"],
        "fixed_threshold": evaluation["fixed_threshold"],
        "adaptive_factor": evaluation["adaptive_factor"],
        "n_bootstrap": evaluation["bootstrap"],
        "seed": seed,
    }
    if dataset == "rtf" or dataset.startswith("dmenet_release_rtf"):  # RTF as DMENet released
        clip = evaluation["rtf_sigma_clip"]
        protocol.update(continuous_clip=[0.0, clip], continuous_scale=clip, continuous_crop=True)
    return protocol


# --------------------------------------------------------------------------------------
# names and method parameters, checked before any job runs
# --------------------------------------------------------------------------------------

#: parameter names whose value must be > 0 when their default is (window and patch sides)
_POSITIVE_NAME = ("window", "stride", "patch", "kernel_size", "block_sizes")


#: intervals of parameters every method names alike (optimiser settings)
COMMON_BOUNDS = {
    "lr": "(0, inf)",
    "momentum": "[0, 1)",
    "beta1": "[0, 1)",
    "weight_decay": "[0, inf)",
}

_INTERVAL = re.compile(r"^\s*([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])\s*$")


def parse_interval(text: str) -> tuple[float, bool, float, bool]:
    """``"[0, 1)"`` -> ``(0.0, True, 1.0, False)``: low end, low closed, high end, high closed
    (``inf`` / ``-inf`` for no bound)."""
    m = _INTERVAL.match(text)
    if not m:
        raise ValueError(f"not an interval like '[0, 1)': {text!r}")
    return float(m.group(2)), m.group(1) == "[", float(m.group(3)), m.group(4) == "]"


def in_interval(value: float, text: str) -> bool:
    """Whether ``value`` lies in the interval ``text`` (:func:`parse_interval`)."""
    lo, lo_closed, hi, hi_closed = parse_interval(text)
    above = value >= lo if lo_closed else value > lo
    below = value <= hi if hi_closed else value < hi
    return above and below


def _type_ok(default: Any, value: Any) -> bool:
    """Whether ``value`` has the type of a method's ``default`` (None accepts anything)."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):  # some selectors also take a number (defusionnet output=k)
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return True


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true/false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, (list, tuple)):
        return "a list"
    return type(default).__name__


def method_param_errors(base: str, params: dict[str, Any], where: str) -> list[str]:
    """Problems of ``params`` for the registered method ``base`` (empty list when fine).

    Checked against the class's declared ``defaults``: unknown names, a value whose type
    differs from the default's (an integer where a float is declared is fine), a negative
    value where the default is non-negative (sizes, sigmas, weights, iteration counts; e.g.
    ``hifst pre_sigma: -1``), 0 for window / stride / patch sizes, and a value outside its
    interval (the class's ``bounds`` and :data:`COMMON_BOUNDS`, e.g. ``momentum: 1.5``).
    ``where`` prefixes every message (``methods.params.lbp``).
    """
    from defocus.methods.registry import method_class

    cls = method_class(base)
    defaults = cls.defaults
    bounds = {**COMMON_BOUNDS, **getattr(cls, "bounds", {})}
    errors = []
    for key, value in params.items():
        if key not in defaults:
            errors.append(
                f"config key {where}.{key}: {base} has no parameter {key!r}; "
                f"valid: {', '.join(sorted(defaults)) or '(none)'}"
            )
            continue
        default = defaults[key]
        if not _type_ok(default, value):
            errors.append(
                f"config key {where}.{key}: {value!r} should be {_type_name(default)} "
                f"like the default {default!r}"
            )
            continue
        if (
            key in bounds
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and not in_interval(value, bounds[key])
        ):
            errors.append(f"config key {where}.{key}: {value!r} must be in {bounds[key]}")
            continue
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if default >= 0 and value < 0:
                errors.append(f"config key {where}.{key}: {value!r} must be >= 0")
            elif default > 0 and value == 0 and key.endswith(_POSITIVE_NAME):
                errors.append(f"config key {where}.{key}: {value!r} must be > 0")
        elif isinstance(default, (list, tuple)) and key.endswith(_POSITIVE_NAME):
            bad = [v for v in value if not isinstance(v, (int, float)) or v <= 0]
            if bad:
                errors.append(f"config key {where}.{key}: {bad!r} must be positive numbers")
    return errors


def config_errors(
    config: dict[str, Any],
    datasets: set[str] | list[str],
    made_folders: tuple[str, ...] = (),
    test_datasets: set[str] | list[str] | None = None,
) -> list[str]:
    """Every problem with the names of a validated config (empty list when fine).

    ``datasets`` are the names a manifest can be made for (registry, SYNDOF renders, demo
    sets); ``test_datasets`` those that can be scored (default: ``datasets``). Checked: each
    ``methods.run`` spec (registered name, its ``@key=value`` overrides) and every
    ``methods.params`` entry (method name, parameters: :func:`method_param_errors`);
    ``test_sets``; ``training.data`` method and dataset names;
    ``datasets`` entries (registry names, existing ``root`` folders); and every
    ``external_methods`` maps folder, which must exist unless it lies under one of
    ``made_folders`` (folders a rule writes, e.g. ``results/exports/``).
    """
    from defocus.methods.registry import available, parse_name

    known_methods = available()
    datasets = set(datasets)
    errors: list[str] = []
    params_cfg = config.get("methods", {}).get("params", {}) or {}
    for base in params_cfg:
        if base not in known_methods:
            errors.append(
                f"config key methods.params.{base}: no such method; "
                f"registered: {', '.join(known_methods)}"
            )
    checked: set[str] = set()
    for base, params in params_cfg.items():
        if base in known_methods:
            errors += method_param_errors(base, dict(params or {}), f"methods.params.{base}")
            checked.add(base)
    for spec in config.get("methods", {}).get("run", []):
        try:
            base, overrides = parse_name(spec)
        except ValueError as e:
            errors.append(f"config key methods.run: {e}")
            continue
        if base not in known_methods:
            errors.append(f"config key methods.run: {spec!r} names no registered method")
            continue
        if overrides:
            errors += method_param_errors(base, overrides, f"methods.run[{spec}]")
    scored = datasets if test_datasets is None else set(test_datasets)
    for name in config.get("test_sets", []):
        if name not in scored:
            errors.append(
                f"config key test_sets: unknown dataset {name!r}; "
                f"known: {', '.join(sorted(scored))}"
            )
    for method, roles in (config.get("training", {}).get("data", {}) or {}).items():
        if method not in known_methods:
            errors.append(
                f"config key training.data.{method}: no such method; "
                f"registered: {', '.join(known_methods)}"
            )
        for role, names in (roles or {}).items():
            for name in names:
                if name not in datasets:
                    errors.append(
                        f"config key training.data.{method}.{role}: unknown dataset {name!r}; "
                        f"known: {', '.join(sorted(datasets))}"
                    )
    from defocus.datasets.registry import REGISTRY

    for name, entry in (config.get("datasets", {}) or {}).items():
        if name not in REGISTRY:
            errors.append(
                f"config key datasets.{name}: not a registry dataset; known: "
                f"{', '.join(sorted(REGISTRY))}"
            )
        root = (entry or {}).get("root")
        if root and not Path(root).is_dir():
            errors.append(f"config key datasets.{name}.root: no such folder {root}")
    for name, entry in (config.get("external_methods", {}) or {}).items():
        for dataset, folder in ((entry or {}).get("maps") or {}).items():
            if dataset not in datasets:
                errors.append(
                    f"config key external_methods.{name}.maps.{dataset}: unknown dataset; "
                    f"known: {', '.join(sorted(datasets))}"
                )
            norm = os.path.normpath(str(folder))
            made = any(norm.startswith(os.path.normpath(m) + os.sep) for m in made_folders)
            if not made and not Path(norm).is_dir():
                errors.append(
                    f"config key external_methods.{name}.maps.{dataset}: no such folder {folder}"
                )
    return errors


def external_config_errors(config: dict[str, Any], method_names: list[str]) -> list[str]:
    """Cross-checks of a validated ``external_methods`` section (empty list when fine).

    The schema checks each entry's form (name pattern, ``maps`` given, ``polarity`` and
    ``interpolation`` values); this checks what it cannot: that no external name is also a
    registered method or a ``methods.run`` name (``method_names``), and that every
    ``index_map`` is a built-in (:data:`defocus.datasets.index_maps.INDEX_MAPS`) or an
    existing file. Called from ``workflow/rules/common.smk`` so a bad entry fails before any
    rule runs.
    """
    from defocus.datasets.index_maps import INDEX_MAPS
    from defocus.methods.registry import available
    from defocus.methods.spec import base_name

    errors = []
    taken = set(method_names) | set(available())
    for name, entry in (config.get("external_methods") or {}).items():
        if name in taken or base_name(name) in taken:
            errors.append(f"external_methods.{name}: name is also a registered method")
        idx = (entry or {}).get("index_map")
        if idx and idx not in INDEX_MAPS and not Path(idx).is_file():
            errors.append(
                f"external_methods.{name}.index_map {idx!r}: not {sorted(INDEX_MAPS)} "
                "and no such file"
            )
    return errors
