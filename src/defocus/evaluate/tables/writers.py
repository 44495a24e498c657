"""How a table is written: CSV at full precision, Markdown and LaTeX (3 decimals, rows that
are not faithful at paper scale marked with a dagger and a legend), the JSON sidecar with
caption, protocol and versions (:func:`write_table`), and the tables' README
(:func:`write_tables_readme`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from defocus.evaluate.tables.rows import FAITHFUL_COLUMN, PROVENANCE_COLUMNS
from defocus.io.atomic import write_text
from defocus.provenance import provenance

DAGGER = "\u2020"
#: legend of the dagger in Markdown and LaTeX
DAGGER_LEGEND = (
    f"{DAGGER} not a faithful implementation at the paper's scale: a substitute, "
    "reconstruction, reference or external row, or trained with fewer iterations or images "
    "than the paper, or from a random backbone where the paper starts from ImageNet (see "
    "the columns implementation, weights, backbone_init and training)."
)


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
