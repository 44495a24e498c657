"""Result tables from evaluation summaries, written as CSV, Markdown and LaTeX.

``table1`` is the headline comparison (the content of DeFusionNet's Table 1: F-measure and
MAE per method and dataset), with bootstrap 95% CIs. ``runtime_table`` mirrors the runtime
columns the papers report, ``ablation_table`` collects the ``base@key=value`` variants of
one method, ``continuous_table`` the MSE/MAE of physical defocus maps (DMENet's RTF table).
Every caption ends with the evaluation protocol that was actually run
(:func:`protocol_of`, from the summaries' own ``protocol``), never with a constant.

Provenance columns (table1 and the runtime table) say what each row is:
``implementation`` (faithful | substitute | reconstruction | reference | external, the
method class's ``fidelity``), ``weights`` (trained here | authors' release | external maps |
none), ``backbone_init`` (imagenet | random | authors' release | n/a, what was loaded) and
``training`` (iterations and training images used against the paper's). The CSV keeps
``faithful_at_paper_scale``; Markdown and LaTeX mark every other row with a dagger and say
so in a legend. Each table of the tables rule also gets a JSON sidecar (``stem.json``) with
its caption, protocol, legend and the package versions and git commit
(:func:`defocus.provenance.provenance`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from defocus.evaluate.metrics import describe_protocol
from defocus.io.atomic import write_text
from defocus.methods.registry import method_class, parse_name
from defocus.methods.spec import base_name
from defocus.provenance import provenance

#: provenance columns of table1 and the runtime table (see the module docstring)
PROVENANCE_COLUMNS = ["implementation", "weights", "backbone_init", "training"]
#: CSV column: True for a faithful implementation at the paper's scale (no dagger)
FAITHFUL_COLUMN = "faithful_at_paper_scale"
DAGGER = "\u2020"
#: legend of the dagger in Markdown and LaTeX
DAGGER_LEGEND = (
    f"{DAGGER} not a faithful implementation at the paper's scale: a substitute, "
    "reconstruction, reference or external row, or trained with fewer iterations or images "
    "than the paper, or from a random backbone where the paper starts from ImageNet (see "
    "the columns implementation, weights, backbone_init and training)."
)
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


def _write_sidecar(path, stem, caption, legend, footer, df, extra: dict) -> None:
    """The JSON beside a table: caption, legend, footer, columns, row count, the versions and
    commit that made it (:func:`defocus.provenance.provenance`), and ``extra``."""
    meta = {
        "table": stem.name,
        "caption": caption,
        "legend": legend,
        "footer": footer,
        "columns": list(df.columns),
        "n_rows": len(df),
        "provenance": provenance(),
        **extra,
    }
    write_text(path, json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


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
    """MSE / MAE of physical defocus maps, for summaries that have them."""
    cols = ["method", "dataset", "n_images_continuous", "defocus_mse", "defocus_mae"]
    return _sort(_frame([s for s in summaries if "defocus_mse" in s], cols))


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


def _fmt(x: Any) -> str:
    if isinstance(x, bool):
        return "yes" if x else ""
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        if x != 0 and abs(x) < 0.01:
            return f"{x:.3g}"
        return f"{x:.3f}"
    return str(x)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers to 3 decimals, NaN as an en dash)."""

    def cell(x: Any) -> str:
        return _fmt(x).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, df.columns)) + " |"]
    lines.append(
        "|"
        + "|".join(
            "---:" if pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool else "---"
            for c in df.columns
        )
        + "|"
    )
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(x) for x in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    DAGGER: r"\textsuperscript{\textdagger}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs ``table`` environment (pandas Styler), cells and caption escaped."""
    body = df.copy()
    body.columns = [latex_escape(c) for c in body.columns]
    styler = body.style.hide(axis="index").format(lambda x: latex_escape(_fmt(x)))
    return styler.to_latex(
        caption=latex_escape(caption), label=label, hrules=True, position_float="centering"
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


def display_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The Markdown / LaTeX view of a table: method names of rows that are not faithful at
    paper scale get a dagger, and the :data:`FAITHFUL_COLUMN` column is dropped. Returns the
    view and whether any row was marked."""
    if FAITHFUL_COLUMN not in df.columns:
        return df, False
    view = df.drop(columns=FAITHFUL_COLUMN)
    marked = ~df[FAITHFUL_COLUMN].astype(bool)
    view["method"] = [
        f"{m}{DAGGER}" if x else str(m) for m, x in zip(df["method"], marked, strict=True)
    ]
    return view, bool(marked.any())


def versions_text(prov: dict[str, str]) -> str:
    """One line of package versions and the git commit, for captions and footers."""
    items = [f"{k} {v}" for k, v in prov.items() if k != "git_commit"]
    return f"Versions: {', '.join(items)}; git commit {prov.get('git_commit', 'unknown')}."


def write_table(
    df: pd.DataFrame,
    stem: str | os.PathLike,
    caption: str,
    protocol_text: str,
    *,
    protocol: dict[str, Any] | None = None,
    footer: str = "",
    sidecar: bool = False,
) -> list[Path]:
    """Write ``stem.csv``, ``stem.md``, ``stem.tex`` (and ``stem.json``) atomically.

    Parameters
    ----------
    df : DataFrame
        The table; the CSV holds it at full precision.
    caption : str
        What the table shows.
    protocol_text : str
        The protocol the rows were scored under (:func:`protocol_of`), appended to the
        caption; "" for tables that are not scored by it.
    protocol : dict, optional
        The protocol itself, recorded in the sidecar.
    footer : str
        A line printed under the Markdown table and appended to the LaTeX caption (e.g.
        :func:`versions_text`).
    sidecar : bool
        Also write ``stem.json``: caption, protocol, legend, columns, and the package
        versions and git commit (:func:`defocus.provenance.provenance`).

    Markdown and LaTeX mark rows that are not faithful at paper scale with a dagger and a
    legend (:func:`display_frame`). Returns the paths written.
    """

    stem = Path(stem)
    view, marked = display_frame(df)
    legend = DAGGER_LEGEND if marked else ""
    full_caption = " ".join(x for x in (caption.strip(), protocol_text.strip()) if x)
    tex_caption = " ".join(x for x in (full_caption, legend, footer.strip()) if x)
    exts = (".csv", ".md", ".tex") + ((".json",) if sidecar else ())
    paths = [stem.with_name(stem.name + ext) for ext in exts]
    write_text(paths[0], df.to_csv(index=False))
    md = f"{full_caption}\n\n{to_markdown(view)}"
    if df.empty:
        md += "\n(no rows)\n"
    md += "".join(f"\n{x}\n" for x in (legend, footer.strip()) if x)
    write_text(paths[1], md)
    write_text(paths[2], to_latex(view, tex_caption, label=f"tab:{stem.name}"))
    if sidecar:
        meta = {"protocol_text": protocol_text, "protocol": protocol}
        _write_sidecar(paths[3], stem, full_caption, legend, footer, df, meta)
    return paths


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


def write_tables_readme(
    path: str | os.PathLike,
    tables: list[tuple[str, str, str]],
    protocol_text: str,
    title: str = "Tables",
    methods: list[tuple[str, ...]] | None = None,
    versions: str = "",
    presets: list[dict[str, Any]] | None = None,
) -> None:
    """Write the tables' README: file, the paper table it mirrors, description, the methods
    and what each row is, and the protocol actually run.

    Parameters
    ----------
    path : path
        Usually ``results/tables/README.md``.
    tables : list of (file, paper_table, description)
        E.g. ``("table1.csv", "DeFusionNet (CVPR'19) Table 1", "F-measure and MAE ...")``.
    protocol_text : str
        The protocol of the rows (:func:`protocol_of`).
    methods : list of tuples, optional
        :func:`methods_listing` of the summaries.
    versions : str
        :func:`versions_text` of the run.
    presets : list of dict, optional
        :func:`defocus.evaluate.protocols.preset_info` of the presets of table_protocols:
        per paper table, the preset that reproduces it and what is known or assumed.
    """

    def cells(row: Iterable[Any]) -> str:
        return "| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |"

    lines = [f"# {title}", "", "| file | mirrors | description |", "|---|---|---|"]
    lines += [cells(t) for t in tables]
    lines += [
        "",
        "Each table is written as `.csv` (full precision), `.md` and `.tex` (3 decimals); the",
        "tables of the tables rule also as `.json` (caption, protocol, package versions, git",
        "commit).",
        "Rows marked `reference` are trivial baselines, not paper methods.",
        "Rows marked `external` score released result maps (config `external_methods`,",
        "`defocus score`), not code run here; `n_missing` > 0 means a subset of the test split.",
        "`n_no_evidence` counts images whose map was constant (scored as undecided, 0.5; the",
        "per-image metrics CSV flags them in column `no_evidence`).",
        "",
        "## What each row is",
        "",
        "- `implementation`: faithful (every step the paper and the authors' release state) |",
        "  substitute (a stated step replaced by a named alternative) | reconstruction (rebuilt",
        "  from an abstract, a review or third-party code) | reference | external (released maps)",
        "- `weights`: trained here | authors' release | external maps | none",
        "- `backbone_init`: imagenet | random | authors' release | n/a (what was loaded)",
        "- `training`: iterations and training images used / the paper's (`?` = unknown)",
        f"- {DAGGER_LEGEND}",
        "",
    ]
    if methods:
        lines += [
            cells(("method", *PROVENANCE_COLUMNS, "what differs from the paper")),
            "|" + "---|" * (len(PROVENANCE_COLUMNS) + 2),
        ]
        lines += [cells(m) for m in methods]
        lines.append("")
    lines += ["## Evaluation protocol", "", protocol_text, ""]
    if presets:
        lines += [
            "## Each paper's own scoring (protocol presets)",
            "",
            "`table_protocols` scores every method under each preset below (config",
            "`evaluation.tabulate`; `evaluation.protocol` picks the one of the other tables;",
            "`defocus score --preset NAME` scores a folder of maps under one).",
            "",
            cells(("preset", "reproduces", "metric", "source", "known / assumed")),
            "|---|---|---|---|---|",
        ]
        lines += [
            cells((p["name"], p["paper_table"], p["metric"], p["source"], p["reading"]))
            for p in presets
        ]
        lines += [""] + [f"- `{p['name']}`: {p['text']}" for p in presets] + [""]
    if versions:
        lines += ["## Versions", "", versions, ""]
    write_text(path, "\n".join(lines))


# --------------------------------------------------------------------------------------
# table_protocols: every method under every preset, ranks, Kendall's tau against declared
# --------------------------------------------------------------------------------------

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
