"""Configuration: the JSON schema in ``config/schema.yaml`` with defaults filled.

The Snakefile validates with ``snakemake.utils.validate`` (which fills defaults the same way);
this module does the same for the command line and tests without importing Snakemake.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

#: the repository's schema (the package is installed editable from the repository)
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


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
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "<top level>"
        raise ConfigError(f"invalid config at {where}: {e.message}")
    return config


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file and validate it (defaults filled)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    cfg = yaml.safe_load(path.read_text()) or {}
    return validate(cfg)


def method_params(config: dict, spec: str) -> dict[str, Any]:
    """``methods.params[<base name>]`` of a method spec; ablation overrides apply later."""
    base = spec.partition("@")[0]
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
    if dataset == "rtf":
        clip = evaluation["rtf_sigma_clip"]
        protocol.update(continuous_clip=[0.0, clip], continuous_scale=clip, continuous_crop=True)
    return protocol
