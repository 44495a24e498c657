"""Rule registry_manifest: normalise a dataset's own layout into the manifest contract.

A dataset whose GT masks all come out one class (a mask encoding or polarity problem) fails
here, with the reason on the console as well as in the rule's log.
"""

import json
import sys
from pathlib import Path

from defocus.datasets.readers import build_manifest
from defocus.io.manifest import ManifestError, check_gt_classes
from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    name = sm.wildcards.dataset
    entry = sm.params.entry
    if entry["root"]:
        root = Path(entry["root"])
    else:
        # the download marker is the rule's only input (input.fetched is its path, a str)
        root = Path(json.loads(Path(sm.input[0]).read_text())["root"])
    out = Path(sm.output.manifest)
    build_manifest(name, root, out.parent, entry, seed=sm.params.seed)
    try:
        check_gt_classes(out)
    except ManifestError as e:
        out.unlink()  # no manifest, so the next run tries again
        print(f"registry_manifest {name}: {e}", file=sys.__stderr__)
        raise
