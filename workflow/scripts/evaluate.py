"""Rule evaluate: per-image metrics, curves and summary of one prediction file."""

import sys

from defocus.evaluate.evaluate import evaluate_file, write_outputs
from defocus.evaluate.protocols import preset_protocol
from defocus.io.predictions import PredictionError, open_predictions
from defocus.logs import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    try:  # a truncated file: one line on the console, and deleted so the next run remakes it
        with open_predictions(sm.input.h5, delete_if_corrupt=True):
            pass
    except PredictionError as e:
        print(f"evaluate: {e}", file=sys.__stderr__)
        raise
    evaluation, dataset = sm.params.protocol, sm.wildcards.dataset
    protocol = preset_protocol(evaluation["protocol"], evaluation, sm.params.seed, dataset)
    per_image, curves, summary = evaluate_file(
        sm.input.h5, sm.input.manifest, "test", protocol, dataset=dataset
    )
    summary.update(method=sm.wildcards.method, dataset=sm.wildcards.dataset)
    write_outputs(per_image, curves, summary, sm.output.csv, sm.output.npz, sm.output.summary)
    log.info("%s on %s: %s", sm.wildcards.method, sm.wildcards.dataset, summary)
