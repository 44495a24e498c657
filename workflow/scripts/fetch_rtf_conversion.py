"""Rule fetch_rtf_conversion: DMENet's evaluation/RTF/convertion.mat (sha256-verified; config
``releases.rtf_conversion`` may name a mirror and its pin)."""

from pathlib import Path

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    from defocus.datasets.dmenet_release import fetch_rtf_conversion

    out = Path(snakemake.output.table)  # noqa: F821
    fetch_rtf_conversion(out, snakemake.params.entry, progress=False)  # noqa: F821
