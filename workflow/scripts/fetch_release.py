"""Rules fetch_weights / fetch_weights_dmenet / fetch_vgg19 / fetch_rtf_conversion: download
an authors' release (sha256-verified) to its resources path with :func:`defocus.releases.fetch`.
Param ``release`` names the registry entry (:data:`defocus.releases.RELEASES`): the DHDE Caffe
model, DMENet's DMENet_BDCS.zip or vgg19.zip (whose one file is extracted), or DMENet's RTF
conversion table.

Param ``entry`` is config ``releases.<name>``: a mirror (``base_url``) and a sha256 pin of its
file, as for a dataset; without it the file comes from the authors' address, checked against
the registry's digest (DMENet publishes none: the first download logs the digest to pin).
"""

from pathlib import Path

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    from defocus.releases import fetch

    out = Path(snakemake.output.file)  # noqa: F821
    fetch(snakemake.params.release, out, snakemake.params.entry, progress=False)  # noqa: F821
