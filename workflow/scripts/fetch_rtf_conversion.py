"""Rule fetch_rtf_conversion: DMENet's evaluation/RTF/convertion.mat, the ``rtf_conversion``
entry of :mod:`defocus.releases` (sha256-verified; config ``releases.rtf_conversion`` may name
a mirror and its pin)."""

from pathlib import Path

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    from defocus.releases import fetch

    out = Path(snakemake.output.table)  # noqa: F821
    fetch("rtf_conversion", out, snakemake.params.entry, progress=False)  # noqa: F821
