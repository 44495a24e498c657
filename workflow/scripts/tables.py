"""Rule tables: table1, runtime, continuous-GT and ablation tables + their README."""

import json
from pathlib import Path

from defocus.evaluate.tables import (
    ablation_table,
    continuous_table,
    runtime_table,
    table1,
    write_table,
    write_tables_readme,
)
from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    summaries = [json.loads(Path(p).read_text()) for p in sm.input.summaries]
    out = Path(sm.output.table1).parent
    listing = []

    write_table(
        table1(summaries),
        out / "table1",
        "F-beta (max over thresholds) and MAE with bootstrap 95% CIs.",
    )
    listing.append(
        (
            "table1",
            "DeFusionNet (Tang CVPR'19) Table 1; DHDE/DMENet comparisons",
            "F-beta and MAE of every method on every test set, with 95% CIs; reference rows "
            "(all-blurred, gradient energy) mark what class balance and contrast alone score",
        )
    )
    write_table(
        runtime_table(summaries),
        out / "table_runtime",
        "Seconds per image of predict(), measured per image in the predict rule.",
    )
    listing.append(
        (
            "table_runtime",
            "DeFusionNet Table 3 / DHDE Sec. 6 runtimes",
            "seconds per image, device and image size of every method",
        )
    )
    cont = continuous_table(summaries)
    if not cont.empty:
        write_table(
            cont,
            out / "table_continuous",
            "MSE and MAE of physical defocus maps against continuous GT "
            "(RTF: sigma clipped at 3.275 px and divided by it).",
        )
        listing.append(
            (
                "table_continuous",
                "DMENet (Lee CVPR'19) Table 2 (RTF)",
                "MSE / MAE of sigma maps against continuous GT",
            )
        )
    bases = sorted({m.partition("@")[0] for m in sm.params.methods if "@" in m})
    for base in bases:
        write_table(
            ablation_table(summaries, base),
            out / f"table_ablation_{base}",
            f"Ablations of {base}: the same protocol, one parameter changed per row.",
        )
        listing.append(
            (
                f"table_ablation_{base}",
                "the method paper's ablation table",
                f"{base} with parameter overrides ({base}@key=value)",
            )
        )
    listing += [tuple(t) for t in sm.params.extra_tables]
    write_tables_readme(sm.output.readme, listing)
