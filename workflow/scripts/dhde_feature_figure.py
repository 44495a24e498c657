"""Rule dhde_feature_figure: paper Figure 3, mean hand-crafted features, sharp vs blurry."""

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    from defocus.features.figures import feature_figure

    feature_figure(list(sm.input.patches), sm.output.png)
