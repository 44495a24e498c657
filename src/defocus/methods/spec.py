"""Method specs, the one syntax that names a method everywhere (config, file paths, tables):
``name`` or ``name@key=value,key2=value2`` (an ablation: the method with overridden
parameters, values read as YAML)."""

from __future__ import annotations

from typing import Any

import yaml


def base_name(spec: str) -> str:
    """The registered name of a spec: ``"dhde@weights=release"`` -> ``"dhde"``."""
    return str(spec).partition("@")[0]


def parse_name(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name@k=v,k2=v2"`` into ``("name", {"k": v, "k2": v2})``."""
    base, _, rest = str(spec).partition("@")
    overrides: dict[str, Any] = {}
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise ValueError(f"bad ablation override {item!r} in {spec!r}; expected key=value")
            overrides[key.strip()] = yaml.safe_load(value)
    return base, overrides
