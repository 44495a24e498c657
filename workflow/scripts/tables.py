"""Rule tables: table1, runtime and continuous-GT tables + the tables' README.

Captions carry the protocol the summaries were scored under (their own ``protocol``), the
provenance of every row and the package versions; every file written here is a declared
output of the rule (the ablation tables come from rule ablation_table).
"""

import json
from pathlib import Path

from defocus.evaluate.protocols import preset_info
from defocus.evaluate.tables import (
    continuous_table,
    methods_listing,
    protocol_of,
    runtime_table,
    table1,
    versions_text,
    write_table,
    write_tables_readme,
)
from defocus.logs import rule_log
from defocus.provenance import provenance

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    summaries = [json.loads(Path(p).read_text()) for p in sm.input.summaries]
    protocol, protocol_text = protocol_of(summaries)
    versions = versions_text(provenance())
    out = Path(sm.output.table1).parent

    def write(df, name, caption, footer=""):
        paths = write_table(
            df,
            out / name,
            caption,
            protocol_text,
            protocol=protocol,
            footer=footer,
            sidecar=True,
        )
        log.info("wrote %s", ", ".join(map(str, paths)))

    write(
        table1(summaries),
        "table1",
        "F-beta (max over thresholds) and MAE with bootstrap CIs; implementation, weights, "
        "backbone_init and training say what each row is.",
    )
    write(
        runtime_table(summaries),
        "table_runtime",
        "Seconds per image of predict(), measured per image in the predict rule after one "
        "untimed warm-up prediction of the split's first image (one-off initialisation "
        "excluded; its time is the prediction file's warmup_seconds).",
        footer=versions,
    )
    write(
        continuous_table(summaries),
        "table_continuous",
        "MSE and MAE of physical defocus maps against continuous GT (RTF: sigma clipped at "
        f"{sm.params.rtf_sigma_clip:g} px and divided by it); empty when no method with a "
        "physical map ran on a test set with continuous GT.",
    )
    listing = [
        (
            "table1",
            "DeFusionNet (Tang CVPR'19) Table 1; DHDE/DMENet comparisons",
            "F-beta and MAE of every method on every test set, with CIs and the provenance "
            "columns; reference rows (all-blurred, gradient energy) mark what class balance "
            "and contrast alone score",
        ),
        (
            "table_runtime",
            "DeFusionNet Table 2 / DHDE Sec. 6 runtimes",
            "seconds per image, device, image size and provenance of every method; package "
            "versions and git commit in the footer",
        ),
        (
            "table_continuous",
            "DMENet (Lee CVPR'19) Table 2 (RTF)",
            "MSE / MAE of sigma maps against continuous GT",
        ),
    ]
    listing += [
        (
            f"table_ablation_{base}",
            "the method paper's ablation table",
            f"{base} with parameter overrides ({base}@key=value)",
        )
        for base in sm.params.ablation_bases
    ]
    listing += [tuple(t) for t in sm.params.extra_tables]
    # each tabulated preset in words (paper table, source, what is assumed, protocol text)
    presets = [
        preset_info(n, sm.params.evaluation, sm.params.seed, sm.params.first_test_set)
        for n in sm.params.evaluation["tabulate"]
    ]
    if presets:
        listing.append(
            (
                "table_protocols",
                "each paper's own scoring (see the presets below)",
                "every method under every protocol preset: the preset's metric, the rank of "
                "each method, Kendall's tau of each preset's ranking against declared; "
                "figure results/figures/protocols.png",
            )
        )
    write_tables_readme(
        sm.output.readme,
        listing,
        protocol_text,
        methods=methods_listing(summaries),
        versions=versions,
        presets=presets,
    )
