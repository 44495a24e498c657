"""Rule registry_manifest: normalise a dataset's own layout into the manifest contract."""

import json
from pathlib import Path

from defocus.datasets.readers import build_manifest
from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    name = sm.wildcards.registry_set
    entry = sm.params.entry
    if entry["root"]:
        root = Path(entry["root"])
    else:
        root = Path(json.loads(Path(sm.input.fetched[0]).read_text())["root"])
    build_manifest(name, root, Path(sm.output.manifest).parent, entry, seed=sm.params.seed)
