"""Rule fetch_dataset: verified download and unpack of one registry dataset."""

import json
from pathlib import Path

from defocus.datasets.download import ensure_dataset
from defocus.io.atomic import write_text
from defocus.logs import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    name = sm.wildcards.dataset
    # the marker lives in <resources>/<name>/, next to the unpacked dataset
    resources = Path(sm.output.marker).parent.parent
    root = ensure_dataset(name, sm.params.entry, resources)
    log.info("dataset %s ready at %s", name, root)
    write_text(sm.output.marker, json.dumps({"dataset": name, "root": str(root)}, indent=2))
