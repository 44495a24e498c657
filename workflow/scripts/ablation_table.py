"""Rule ablation_table: the variants ``base@key=value`` of one method side by side."""

import json
from pathlib import Path

from defocus.evaluate.tables import ablation_table, protocol_of, write_table
from defocus.logs import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    summaries = [json.loads(Path(p).read_text()) for p in sm.input.summaries]
    protocol, protocol_text = protocol_of(summaries)
    base = sm.wildcards.base
    paths = write_table(
        ablation_table(summaries, base),
        Path(sm.output.csv).with_suffix(""),
        f"Ablations of {base}: the same protocol, one parameter changed per row.",
        protocol_text,
        protocol=protocol,
        sidecar=True,
    )
    log.info("wrote %s", ", ".join(map(str, paths)))
