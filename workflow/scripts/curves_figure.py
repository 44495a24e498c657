"""Rule curves_figure: PR and F-vs-threshold curves of every method on one dataset."""

from pathlib import Path

import numpy as np

from defocus.evaluate.figures import f_curves, pr_curves
from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    curves = {}
    for method, path in zip(sm.params.methods, sm.input.curves, strict=True):
        with np.load(path) as z:
            curves[method] = {k: z[k] for k in z.files}
    dataset = sm.wildcards.dataset
    pr_curves(curves, dataset, Path(sm.output.pr).with_suffix(""))
    f_curves(curves, dataset, Path(sm.output.f).with_suffix(""))
