"""Rule fetch_rtf_conversion: DMENet's evaluation/RTF/convertion.mat (sha256-verified)."""

from pathlib import Path

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    from defocus.datasets.dmenet_release import fetch_rtf_conversion

    fetch_rtf_conversion(Path(snakemake.output.table), progress=False)  # noqa: F821
