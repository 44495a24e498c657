"""Result tables from evaluation summaries, written as CSV, Markdown and LaTeX.

``table1`` is the headline comparison (the content of DeFusionNet's Table 1: F-measure and
MAE per method and dataset), with bootstrap 95% CIs. ``runtime_table`` mirrors the runtime
columns the papers report, ``ablation_table`` collects the ``base@key=value`` variants of
one method, ``continuous_table`` the MSE/MAE of physical defocus maps (DMENet's RTF table).
Every caption ends with the evaluation protocol (:data:`PROTOCOL_TEXT`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from defocus.evaluate.metrics import PROTOCOL_TEXT
from defocus.io.atomic import write_text
from defocus.methods.registry import method_class, parse_name

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
]
RUNTIME_COLUMNS = ["method", "dataset", "seconds_per_image", "device", "image_size"]


def is_reference(method: str) -> bool:
    """Whether ``method`` (base name before ``@``) is a trivial reference row.

    Looked up in the method registry (``Method.reference``); a name the registry does not
    know (or whose module cannot be imported here) counts as a reference only if it starts
    with ``ref_``.
    """
    base = method.partition("@")[0]
    try:
        return bool(method_class(base).reference)
    except (KeyError, ImportError):
        return base.startswith("ref_")


def is_external(summary: dict[str, Any]) -> bool:
    """Whether a summary scores released result maps (:mod:`defocus.external`)."""
    return bool(summary.get("external", summary.get("device") == "external"))


def _frame(summaries: Iterable[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    # JSON null (a non-finite float written by write_outputs) reads back as NaN
    rows = [{c: math.nan if s.get(c) is None else s[c] for c in columns} for s in summaries]
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
    says the row was scored on a subset of the test split (``n_images`` images).
    """
    if not summaries:
        raise ValueError("table1 needs at least one summary")
    derived = ("reference", "external", "n_missing")
    df = _frame(summaries, [c for c in TABLE1_COLUMNS if c not in derived])
    df["reference"] = df["method"].map(is_reference)
    df["external"] = [is_external(s) for s in summaries]
    df["n_missing"] = [int(s.get("n_missing") or 0) for s in summaries]
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


def write_table(
    df: pd.DataFrame, stem: str | os.PathLike, caption: str, protocol_text: str = PROTOCOL_TEXT
) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` and ``stem.tex`` atomically; returns the paths.

    The caption followed by ``protocol_text`` (default :data:`PROTOCOL_TEXT`; pass a
    summary's ``protocol_text`` when the protocol was overridden) heads the Markdown file
    and is the LaTeX caption; the CSV holds the full-precision numbers.
    """
    stem = Path(stem)
    full_caption = f"{caption.rstrip()} {protocol_text}"
    paths = [stem.with_name(stem.name + ext) for ext in (".csv", ".md", ".tex")]
    write_text(paths[0], df.to_csv(index=False))
    write_text(paths[1], f"{full_caption}\n\n{to_markdown(df)}")
    write_text(paths[2], to_latex(df, full_caption, label=f"tab:{stem.name}"))
    return paths


def write_tables_readme(
    path: str | os.PathLike,
    tables: list[tuple[str, str, str]],
    title: str = "Tables",
    protocol_text: str = PROTOCOL_TEXT,
) -> None:
    """Write the tables' README: file, the paper table it mirrors, description, protocol.

    Parameters
    ----------
    path : path
        Usually ``results/tables/README.md``.
    tables : list of (file, paper_table, description)
        E.g. ``("table1.csv", "DeFusionNet (CVPR'19) Table 1", "F-measure and MAE ...")``.
    """
    lines = [f"# {title}", "", "| file | mirrors | description |", "|---|---|---|"]
    for file, paper_table, description in tables:
        cells = [str(x).replace("|", "\\|") for x in (file, paper_table, description)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Each table is written as `.csv` (full precision), `.md` and `.tex` (3 decimals).",
        "Rows marked `reference` are trivial baselines, not paper methods.",
        "Rows marked `external` score released result maps (config `external_methods`,",
        "`defocus score`), not code run here; `n_missing` > 0 means a subset of the test split.",
        "",
        "## Evaluation protocol",
        "",
        protocol_text,
        "",
    ]
    write_text(path, "\n".join(lines))
