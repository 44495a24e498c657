"""``table_protocols``: every method scored under every protocol preset, its rank under
each preset's own metric and Kendall's tau of each preset's ranking against the declared
protocol's (:func:`protocols_table`); the per-file record the evaluate_protocols rule keeps
(:func:`protocol_record`), and the wide Markdown / LaTeX view with its writer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from defocus.evaluate.tables.rows import (
    FAITHFUL_COLUMN,
    is_external,
    is_reference,
    summary_provenance,
)
from defocus.evaluate.tables.writers import (
    DAGGER_LEGEND,
    _fmt,
    _write_sidecar,
    display_frame,
    to_latex,
    to_markdown,
)
from defocus.io.atomic import write_text

#: per-preset numbers kept from each summary (``results/protocols/{method}/{dataset}.json``)
PROTOCOL_SCALARS = [
    "n_images",
    "n_split_missing",
    "images",
    "f_beta",
    "f_beta_adaptive",
    "mae",
    "accuracy_eq13",
    "map",
    "f_beta_sigma",
    "defocus_mse",
    "defocus_mae",
]
PROTOCOLS_COLUMNS = [
    "dataset",
    "preset",
    "method",
    "metric",
    "value",
    "rank",
    "n_ranked",
    "kendall_tau",
    "kendall_p",
    *PROTOCOL_SCALARS,
    "reference",
    "external",
    "implementation",
    FAITHFUL_COLUMN,
]


def protocol_record(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What ``results/protocols/{method}/{dataset}.json`` keeps of one prediction file scored
    under several presets: method, dataset, provenance and, per preset, its metric, the
    value of that metric, :data:`PROTOCOL_SCALARS` and the protocol text."""
    if not summaries:
        raise ValueError("protocol_record needs the summary of at least one preset")
    first = next(iter(summaries.values()))
    out: dict[str, Any] = {
        "method": first["method"],
        "dataset": first["dataset"],
        "external": is_external(first),
        "provenance": first.get("provenance") or {},
        "presets": {},
    }
    for name, s in summaries.items():
        entry = {k: s.get(k, math.nan) for k in PROTOCOL_SCALARS}
        entry.update(
            metric=s["metric"], value=s.get(s["metric"], math.nan), text=s["protocol_text"]
        )
        out["presets"][name] = entry
    return out


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def protocols_table(
    records: list[dict[str, Any]], presets: Sequence[str], baseline: str = "declared"
) -> pd.DataFrame:
    """Every (dataset, preset, method): the preset's own metric, its rank and Kendall's tau.

    Ranks (1 = best; ties share the lowest rank) are taken within a dataset and preset over
    the rows that are not trivial references and have a value; higher is better except for
    MAE and MSE (:data:`defocus.evaluate.protocols.METRICS`). ``kendall_tau`` (tau-b,
    ``scipy.stats.kendalltau``) compares a preset's scores with ``baseline``'s over the
    methods ranked under both (NaN with fewer than two); ``n_ranked`` counts those methods.
    Columns :data:`PROTOCOLS_COLUMNS`.
    """
    from scipy.stats import kendalltau, rankdata

    from defocus.evaluate.protocols import METRICS

    if not records:
        raise ValueError("table_protocols needs at least one scored prediction file")
    if baseline not in presets:
        raise ValueError(
            f"the presets of table_protocols must include {baseline!r} (the ranking Kendall's "
            f"tau compares against); got {list(presets)}: add it to evaluation.tabulate"
        )
    rows = []
    for rec in records:
        prov = summary_provenance({"provenance": rec.get("provenance"), **rec})
        for name in presets:
            if name not in rec["presets"]:
                raise ValueError(
                    f"{rec['method']} on {rec['dataset']} was not scored under preset {name!r} "
                    f"(scored: {sorted(rec['presets'])}); re-run its evaluate_protocols job"
                )
            e = rec["presets"][name]
            row = {
                "dataset": rec["dataset"],
                "preset": name,
                "method": rec["method"],
                "metric": e["metric"],
                "value": _num(e["value"]),
            }
            row.update({k: e.get(k) for k in PROTOCOL_SCALARS})
            for k in PROTOCOL_SCALARS:
                if k not in ("images",):
                    row[k] = _num(row[k])
            row.update(
                reference=is_reference(str(rec["method"])),
                external=bool(rec.get("external")),
                implementation=prov["implementation"],
                **{FAITHFUL_COLUMN: prov[FAITHFUL_COLUMN]},
            )
            rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("n_images", "n_split_missing"):
        df[col] = df[col].fillna(0).astype(int)
    df["rank"] = math.nan
    goodness = pd.Series(math.nan, index=df.index)
    for _, g in df.groupby(["dataset", "preset"], sort=False):
        ok = g[~g["reference"] & g["value"].notna()]
        if ok.empty:
            continue
        sign = 1.0 if METRICS.get(str(ok["metric"].iloc[0]), True) else -1.0
        goodness.loc[ok.index] = sign * ok["value"]
        df.loc[ok.index, "rank"] = rankdata(-sign * ok["value"].to_numpy(), method="min")
    df["kendall_tau"] = math.nan
    df["kendall_p"] = math.nan
    df["n_ranked"] = 0
    for (dataset, _name), g in df.groupby(["dataset", "preset"], sort=False):
        base = df[(df["dataset"] == dataset) & (df["preset"] == baseline)]
        both = pd.DataFrame(
            {
                "a": goodness.loc[base.index].set_axis(base["method"]),
                "b": goodness.loc[g.index].set_axis(g["method"]),
            }
        ).dropna()
        df.loc[g.index, "n_ranked"] = len(both)
        if len(both) >= 2 and both["a"].nunique() > 1 and both["b"].nunique() > 1:
            res = kendalltau(both["a"], both["b"])
            df.loc[g.index, "kendall_tau"] = float(res.statistic)
            df.loc[g.index, "kendall_p"] = float(res.pvalue)
    order = {n: i for i, n in enumerate(presets)}
    df = df.assign(_p=df["preset"].map(order), _r=df["reference"].astype(int))
    df = df.sort_values(["dataset", "_p", "_r"], kind="stable").drop(columns=["_p", "_r"])
    return df[PROTOCOLS_COLUMNS].reset_index(drop=True)


def protocols_view(df: pd.DataFrame, presets: Sequence[str]) -> pd.DataFrame:
    """The Markdown / LaTeX view of :func:`protocols_table`: one row per (dataset, method),
    one column per preset holding ``value (rank)``, and per dataset a last row with each
    preset's Kendall's tau against the baseline. Non-faithful rows keep the dagger column."""
    cols = {n: f"{n} [{df.loc[df['preset'] == n, 'metric'].iloc[0]}]" for n in presets}
    out = []
    for dataset, g in df.groupby("dataset", sort=False):
        for method, m in g.groupby("method", sort=False):
            row: dict[str, Any] = {"dataset": dataset, "method": method}
            for n in presets:
                e = m[m["preset"] == n].iloc[0]
                rank = "" if math.isnan(e["rank"]) else f" ({int(e['rank'])})"
                row[cols[n]] = f"{_fmt(float(e['value']))}{rank}"
            row[FAITHFUL_COLUMN] = bool(m[FAITHFUL_COLUMN].iloc[0])
            out.append(row)
        tau: dict[str, Any] = {"dataset": dataset, "method": "Kendall's tau vs declared"}
        for n in presets:
            t = g.loc[g["preset"] == n, "kendall_tau"].iloc[0]
            tau[cols[n]] = _fmt(float(t))
        tau[FAITHFUL_COLUMN] = True
        out.append(tau)
    return pd.DataFrame(out, columns=["dataset", "method", *cols.values(), FAITHFUL_COLUMN])


def write_protocols_table(
    df: pd.DataFrame,
    stem: str | os.PathLike,
    presets: Sequence[str],
    preset_info: list[dict[str, Any]],
    footer: str = "",
) -> list[Path]:
    """Write ``stem.csv`` (the long :func:`protocols_table`), ``stem.md`` and ``stem.tex``
    (the wide :func:`protocols_view`) and ``stem.json`` (every preset's definition, source,
    reading and protocol text, the versions and git commit), atomically."""

    stem = Path(stem)
    caption = (
        "Every method scored under each paper's own protocol (preset): the preset's metric "
        "with the method's rank under it (1 = best; reference rows unranked), and Kendall's "
        "tau of each preset's ranking against the declared protocol's. Presets: "
        + "; ".join(f"{p['name']}: {p['paper_table']} ({p['metric']})" for p in preset_info)
        + "."
    )
    paths = [stem.with_name(stem.name + ext) for ext in (".csv", ".md", ".tex", ".json")]
    write_text(paths[0], df.to_csv(index=False))
    view, marked = display_frame(protocols_view(df, presets))
    legend = DAGGER_LEGEND if marked else ""
    md = f"{caption}\n\n{to_markdown(view)}"
    md += "".join(f"\n{x}\n" for x in (legend, footer.strip()) if x)
    md += "\n" + "\n".join(f"- **{p['name']}**: {p['differs']}" for p in preset_info) + "\n"
    write_text(paths[1], md)
    tex_caption = " ".join(x for x in (caption, legend, footer.strip()) if x)
    write_text(paths[2], to_latex(view, tex_caption, label=f"tab:{stem.name}"))
    _write_sidecar(paths[3], stem, caption, legend, footer, df, {"presets": preset_info})
    return paths
