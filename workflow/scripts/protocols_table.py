"""Rule protocols_table: table_protocols (every method x every preset, ranks, Kendall's tau
against declared) and the figure of each method's rank across the presets."""

import json
from pathlib import Path

from defocus.evaluate.figures import protocols_figure
from defocus.evaluate.protocols import preset_info
from defocus.evaluate.tables import protocols_table, versions_text, write_protocols_table
from defocus.logs import rule_log
from defocus.provenance import provenance

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    records = [json.loads(Path(p).read_text()) for p in sm.input.records]
    presets = list(sm.params.presets)
    table = protocols_table(records, presets)
    paths = write_protocols_table(
        table,
        Path(sm.output.csv).with_suffix(""),
        presets,
        [
            preset_info(n, sm.params.evaluation, sm.params.seed, sm.params.first_test_set)
            for n in presets
        ],
        footer=versions_text(provenance()),
    )
    paths += protocols_figure(table, presets, Path(sm.output.png).with_suffix(""))
    log.info("wrote %s", ", ".join(map(str, paths)))
