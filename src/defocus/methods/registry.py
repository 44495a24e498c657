"""Registry of method names -> classes, and parsing of ablation names.

An ablation is a registered name plus overrides, ``"name@key=value,key2=value2"``; values
are parsed as YAML scalars (``steps=1`` -> int, ``fuse=false`` -> bool). Config may also
give per-method parameters under ``methods.params.<name>``.
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any

from defocus.methods.base import Method

# the one spec syntax, re-exported for callers of the registry
from defocus.methods.spec import base_name as base_name
from defocus.methods.spec import parse_name as parse_name

#: name -> "module:Class"; modules are imported lazily so ``defocus --help`` stays instant
_REGISTRY: dict[str, str] = {
    "ref_all_blurred": "defocus.methods.reference:AllBlurred",
    "ref_gradient": "defocus.methods.reference:GradientEnergy",
    # learned methods; their modules import torch
    "dhde": "defocus.methods.dhde:DHDE",
    "zeng": "defocus.methods.zeng:Zeng",
    "defusionnet": "defocus.methods.defusionnet:DeFusionNet",
    "dmenet": "defocus.methods.dmenet:DMENet",
}


class MethodImportError(ImportError):
    """A registered method's module (or its method package) failed to import.

    The message holds the original traceback, so a broken dependency or a syntax error in
    a method module is reported as such, never as an unknown method name.
    """


#: method packages that failed to import: package name -> formatted traceback
_PACKAGE_ERRORS: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Register ``name`` as ``"module:Class"`` (used by method modules and plugins)."""
    _REGISTRY[name] = target


def available() -> list[str]:
    """All registered method names (classic modules register on import of the package)."""
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    # Method packages add themselves to _REGISTRY through their __init__ tables.
    # A package that fails to import is remembered with its traceback: asking for one of
    # its (then unregistered) names reports that failure instead of "unknown method".
    for mod in ("defocus.methods.classic",):
        try:
            m = importlib.import_module(mod)
        except Exception:  # noqa: BLE001 - any failure is reported when a name is requested
            _PACKAGE_ERRORS[mod] = traceback.format_exc()
            continue
        _PACKAGE_ERRORS.pop(mod, None)
        for name, target in getattr(m, "REGISTRY", {}).items():
            _REGISTRY.setdefault(name, target)


def method_class(name: str) -> type[Method]:
    """The class registered for a base name (no overrides)."""
    _load_builtin()
    if name not in _REGISTRY:
        if _PACKAGE_ERRORS:
            failed = "\n".join(f"{pkg}:\n{tb}" for pkg, tb in _PACKAGE_ERRORS.items())
            raise MethodImportError(
                f"method {name!r} is not registered, and a method package failed to import "
                f"(it may define {name!r}); fix this error first:\n{failed}"
            )
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    module, _, cls = _REGISTRY[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except Exception as e:  # noqa: BLE001 - import errors of any kind, with their traceback
        raise MethodImportError(
            f"method {name!r} is registered as {_REGISTRY[name]!r}, but importing it failed "
            f"({type(e).__name__}: {e}):\n{traceback.format_exc()}"
        ) from e


def get_method(spec: str, params: dict[str, Any] | None = None) -> Method:
    """Build a method from ``spec`` (name or ablation name) and config ``params``."""
    base, overrides = parse_name(spec)
    cls = method_class(base)
    return cls(**{**(params or {}), **overrides})
