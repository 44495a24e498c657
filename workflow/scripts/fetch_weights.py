"""Rules fetch_weights / fetch_weights_dmenet / fetch_vgg19: download an authors' release
(sha256-verified) to its resources path: the DHDE Caffe model, or DMENet's DMENet_BDCS.zip
(param ``release: dmenet``) or vgg19.zip (``release: vgg19``), whose one file is extracted.

Config ``releases.dhde`` / ``releases.dmenet`` / ``releases.vgg19`` may name a mirror
(``base_url``) and pin its file's sha256, as for a dataset; without it the file comes from the
authors' repository, checked against the pinned digest of the release (DMENet publishes none:
the first download logs the digest to pin).
"""

import os
from pathlib import Path

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    from defocus.datasets.download import DownloadError, fetch_release
    from defocus.datasets.registry import RemoteFile
    from defocus.methods.dhde import RELEASE_FNAME, RELEASE_SHA256, RELEASE_URL

    out = Path(snakemake.output.weights)  # noqa: F821
    release = getattr(snakemake.params, "release", "dhde")  # noqa: F821
    if release in ("dmenet", "vgg19"):
        from defocus.methods.dmenet_release import fetch_release_npz, fetch_vgg19_npy

        fetch = fetch_release_npz if release == "dmenet" else fetch_vgg19_npy
        fetch(out, snakemake.params.entry, progress=False)  # noqa: F821
    else:
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
