"""Rule syndof_figure: input, depth, sigma, render and binary map of a few samples."""

from defocus.logs import rule_log
from defocus.render.workflow import figure_from_manifest

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    figure_from_manifest(sm.input.manifest, sm.output.png, n=sm.params.n)
