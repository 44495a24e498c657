"""Rule predict: one method on the test split of one dataset -> prediction HDF5."""

from pathlib import Path

from defocus.logs import rule_log, set_threads
from defocus.predict import predict_manifest

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    set_threads(sm.threads)
    predict_manifest(
        sm.wildcards.method,
        sm.params.params,
        sm.input.manifest,
        sm.output.h5,
        split=sm.params.split,
        device=sm.params.device,
        checkpoint=sm.input.checkpoint or None,
        dataset=Path(sm.input.manifest).parent.name,
        max_side=sm.params.max_side,
    )
