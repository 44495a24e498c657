"""Rule fetch_weights: download the DHDE release model (sha256-verified) to its resources path."""

import os
from pathlib import Path

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    from defocus.methods.dhde import fetch_release_weights

    out = Path(snakemake.output.weights)  # noqa: F821
    got = fetch_release_weights(out.parent / "download", progress=False)
    os.replace(got, out)  # same file system: atomic
