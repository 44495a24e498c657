"""Rule demo_sharp: the photographs scikit-image ships, as a manifest of sharp images."""

from pathlib import Path

from defocus.datasets.demo import build_demo_sharp
from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    build_demo_sharp(sm.params.photos, sm.params.max_side, Path(sm.output.manifest).parent)
