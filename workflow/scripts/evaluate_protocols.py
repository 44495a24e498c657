"""Rule evaluate_protocols: one prediction file under every tabulated protocol preset."""

import json

from defocus.evaluate.evaluate import evaluate_file, to_jsonable
from defocus.evaluate.protocols import preset_protocol
from defocus.evaluate.tables import protocol_record
from defocus.io.atomic import write_text
from defocus.logs import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    dataset = sm.wildcards.dataset
    summaries = {}
    for name in sm.params.presets:
        # ranks and Kendall's tau need the estimates only: no bootstrap resamples
        protocol = preset_protocol(
            name, sm.params.evaluation, sm.params.seed, dataset, n_bootstrap=0
        )
        _, _, summary = evaluate_file(
            sm.input.h5, sm.input.manifest, "test", protocol, dataset=dataset
        )
        summary.update(method=sm.wildcards.method, dataset=dataset)
        summaries[name] = summary
        log.info("%s: %s = %s", name, summary["metric"], summary.get(summary["metric"]))
    record = to_jsonable(protocol_record(summaries))
    write_text(sm.output.json, json.dumps(record, indent=2, sort_keys=True) + "\n")
