"""Rule fetch_weights: download the DHDE release model (sha256-verified) to its resources path.

Config ``releases.dhde`` may name a mirror (``base_url``) and pin its file's sha256, as for a
dataset; without it the file comes from the authors' repository, checked against the pinned
digest of the release.
"""

import os
from pathlib import Path

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    from defocus.datasets.download import DownloadError, fetch_release
    from defocus.datasets.registry import RemoteFile
    from defocus.methods.dhde import RELEASE_FNAME, RELEASE_SHA256, RELEASE_URL

    out = Path(snakemake.output.weights)  # noqa: F821
    remote = RemoteFile(RELEASE_URL, RELEASE_FNAME, RELEASE_SHA256, 507651, unpack=False)
    entry = snakemake.params.entry  # noqa: F821
    try:
        got = fetch_release(remote, out.parent / "download", entry, "dhde", False)
    except DownloadError as err:
        raise DownloadError(
            f"{err} For the DHDE release weights: put {RELEASE_FNAME} (from {RELEASE_URL}) "
            f"in {out.parent / 'download'}, or set methods.params.dhde.weights to a local "
            ".caffemodel."
        ) from err
    os.replace(got, out)  # same file system: atomic
