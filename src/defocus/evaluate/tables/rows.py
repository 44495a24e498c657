"""Table builders: one row per (method, dataset) from the evaluation summaries.

``table1`` (the headline F-measure / MAE comparison with bootstrap CIs), ``runtime_table``,
``continuous_table`` and ``ablation_table``; the provenance columns of each row
(:func:`summary_provenance`), the reference rows (:func:`is_reference`), the protocol the
rows share with its caption text (:func:`protocol_of`) and the methods listing of the
tables' README (:func:`methods_listing`). Column meanings are in
:mod:`defocus.evaluate.tables`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from defocus.evaluate.metrics import describe_protocol
from defocus.methods.registry import method_class, parse_name
from defocus.methods.spec import base_name

#: provenance columns of table1 and the runtime table (see :mod:`defocus.evaluate.tables`)
PROVENANCE_COLUMNS = ["implementation", "weights", "backbone_init", "training"]
#: CSV column: True for a faithful implementation at the paper's scale (no dagger)
FAITHFUL_COLUMN = "faithful_at_paper_scale"
#: protocol keys that only concern continuous (sigma) maps; they may differ per dataset
_CONTINUOUS_KEYS = ("continuous_clip", "continuous_scale", "continuous_crop")

TABLE1_COLUMNS = [
    "method",
    "dataset",
    "n_images",
    "f_beta",
    "f_beta_ci_low",
    "f_beta_ci_high",
    "mae",
    "mae_ci_low",
    "mae_ci_high",
    "f_beta_mean",
    "f_beta_adaptive",
    "accuracy",
    "iou",
    "reference",
    "external",
    "n_missing",
    "n_no_evidence",
    *PROVENANCE_COLUMNS,
    FAITHFUL_COLUMN,
]
RUNTIME_COLUMNS = [
    "method",
    "dataset",
    "seconds_per_image",
    "device",
    "image_size",
    *PROVENANCE_COLUMNS,
    FAITHFUL_COLUMN,
]


def is_reference(method: str) -> bool:
    """Whether ``method`` (base name before ``@``) is a trivial reference row.

    Looked up in the method registry (``Method.reference``); a name the registry does not
    know (or whose module cannot be imported here) counts as a reference only if it starts
    with ``ref_``. A registered method whose module fails to import raises
    (:class:`~defocus.methods.registry.MethodImportError`).
    """
    base = base_name(method)
    try:
        return bool(method_class(base).reference)
    except KeyError:  # not registered (an external row); import errors surface
        return base.startswith("ref_")


def is_external(summary: dict[str, Any]) -> bool:
    """Whether a summary scores released result maps (:mod:`defocus.external`)."""
    return bool(summary.get("external", summary.get("device") == "external"))


def summary_provenance(summary: dict[str, Any]) -> dict[str, Any]:
    """The provenance of a summary's row (written by the evaluate stage), with the table's
    column values; a summary without one (older files) says ``unknown``."""
    prov = dict(summary.get("provenance") or {})
    if not prov and is_external(summary):
        from defocus.evaluate.evaluate import EXTERNAL_PROVENANCE

        prov = dict(EXTERNAL_PROVENANCE)
    out = {c: str(prov.get(c, "unknown")) for c in PROVENANCE_COLUMNS}
    out[FAITHFUL_COLUMN] = bool(prov.get("faithful", False))
    return out


def _frame(summaries: Iterable[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    # JSON null (a non-finite float written by write_outputs) reads back as NaN
    rows = []
    for s in summaries:
        prov = summary_provenance(s)
        rows.append(
            {c: prov[c] if c in prov else (math.nan if s.get(c) is None else s[c]) for c in columns}
        )
    return pd.DataFrame(rows, columns=list(columns))


def _sort(df: pd.DataFrame) -> pd.DataFrame:
    # stable: within a dataset the order of ``summaries`` (the config's method order) is kept
    ref = df["method"].map(is_reference)
    order = pd.DataFrame({"dataset": df["dataset"].astype(str), "ref": ref})
    idx = order.sort_values(["dataset", "ref"], kind="stable").index
    return df.loc[idx].reset_index(drop=True)


def table1(summaries: list[dict[str, Any]]) -> pd.DataFrame:
    """Headline table: one row per (method, dataset), sorted by dataset, references last.

    Columns :data:`TABLE1_COLUMNS`; ``reference`` is True for trivial reference rows,
    ``external`` for released maps scored by :mod:`defocus.external`, whose ``n_missing`` > 0
    says the row was scored on a subset of the test split (``n_images`` images);
    ``n_no_evidence`` counts images whose map was constant; then the provenance columns
    (:data:`PROVENANCE_COLUMNS`) and :data:`FAITHFUL_COLUMN`.
    """
    if not summaries:
        raise ValueError("table1 needs at least one summary")
    df = _frame(summaries, TABLE1_COLUMNS)
    df["reference"] = df["method"].map(is_reference)
    df["external"] = [is_external(s) for s in summaries]
    df["n_missing"] = [int(s.get("n_missing") or 0) for s in summaries]
    df["n_no_evidence"] = [int(s.get("n_no_evidence") or 0) for s in summaries]
    return _sort(df)


def runtime_table(summaries: list[dict[str, Any]]) -> pd.DataFrame:
    """Seconds per image, device and image size per (method, dataset); external rows (released
    maps, no timing) are left out."""
    return _sort(_frame([s for s in summaries if not is_external(s)], RUNTIME_COLUMNS))


def continuous_table(summaries: list[dict[str, Any]]) -> pd.DataFrame:
    """MSE / MAE of physical defocus maps, for summaries that have them. Where a method stored
    its undecoded network output and was scored in its authors' units (DMENet on the released
    SYNDOF test: ``net_mse`` / ``net_mae``, CoC/15 against GT/255), those columns follow."""
    cols = ["method", "dataset", "n_images_continuous", "defocus_mse", "defocus_mae"]
    chosen = [s for s in summaries if "defocus_mse" in s]
    if any("net_mse" in s for s in chosen):
        cols += ["n_images_net", "net_unit", "net_mse", "net_mae"]
    return _sort(_frame(chosen, cols))


def ablation_table(summaries: list[dict[str, Any]], base_method: str) -> pd.DataFrame:
    """The variants ``base_method@k=v,...`` (and ``base_method`` itself) side by side.

    One column per override key (empty for the default), the table-1 metrics, and
    ``delta_f_beta`` / ``delta_mae`` against the default of the same dataset where present.
    """
    chosen = [s for s in summaries if parse_name(str(s["method"]))[0] == base_method]
    if not chosen:
        raise ValueError(
            f"no summary of method {base_method!r} or its ablations "
            f"(got {sorted({str(s['method']) for s in summaries})})"
        )
    metrics = ["n_images", "f_beta", "f_beta_ci_low", "f_beta_ci_high"]
    metrics += ["mae", "mae_ci_low", "mae_ci_high", "f_beta_mean", "f_beta_adaptive"]
    df = _frame(chosen, ["method", "dataset", *metrics])
    overrides = [parse_name(str(m))[1] for m in df["method"]]
    keys = sorted({k for o in overrides for k in o})
    for pos, k in enumerate(keys):
        df.insert(2 + pos, k, [str(o[k]) if k in o else "" for o in overrides])
    default = df[df["method"] == base_method].set_index("dataset")
    for col in ("f_beta", "mae"):
        base = df["dataset"].map(default[col]) if not default.empty else math.nan
        df[f"delta_{col}"] = df[col] - base
    not_default = (df["method"] != base_method).astype(int)
    return (
        df.assign(_d=not_default)
        .sort_values(["dataset", "_d"], kind="stable")
        .drop(columns="_d")
        .reset_index(drop=True)
    )


def protocol_of(summaries: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The protocol the summaries were scored under, and its caption text.

    Every summary records its resolved protocol (:func:`defocus.evaluate.evaluate.
    evaluate_file`); rows of one table must share the binary-metric part of it (the keys for
    continuous maps may differ per dataset, e.g. RTF's clipping). Raises ValueError naming
    the rows that differ, or when a summary has no protocol.
    """
    if not summaries:
        raise ValueError("no summaries: a table needs at least one evaluated row")
    found: dict[str, list[str]] = {}
    protocol: dict[str, Any] = {}
    for s in summaries:
        if not isinstance(s.get("protocol"), dict):
            raise ValueError(
                f"summary of {s.get('method')} on {s.get('dataset')} has no 'protocol'; "
                "re-run its evaluate job"
            )
        binary = {k: v for k, v in s["protocol"].items() if k not in _CONTINUOUS_KEYS}
        key = json.dumps(binary, sort_keys=True)
        found.setdefault(key, []).append(f"{s.get('method')}/{s.get('dataset')}")
        protocol = protocol or binary
    if len(found) > 1:
        detail = "; ".join(f"{rows[:3]}: {k}" for k, rows in found.items())
        raise ValueError(f"summaries were scored under different protocols: {detail}")
    return protocol, describe_protocol(**protocol)


def methods_listing(summaries: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per method of the summaries: (method, implementation, weights, backbone_init,
    training, what differs from the paper), in first-seen order."""
    out: dict[str, tuple[str, ...]] = {}
    for s in summaries:
        name = str(s["method"])
        prov = dict(s.get("provenance") or {})
        if not prov and is_external(s):
            from defocus.evaluate.evaluate import EXTERNAL_PROVENANCE

            prov = dict(EXTERNAL_PROVENANCE)
        cols = [str(prov.get(c, "unknown")) for c in PROVENANCE_COLUMNS]
        out.setdefault(name, (name, *cols, str(prov.get("differs", ""))))
    return list(out.values())
