"""Rule import_external: a folder of released maps -> prediction HDF5 (device "external")."""

from defocus.external import import_maps
from defocus.logs import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    info = import_maps(
        sm.input.maps,
        sm.input.manifest,
        sm.output.h5,
        sm.wildcards.method,
        polarity=sm.params.polarity,
        index_map=sm.params.index_map,
        allow_subset=sm.params.allow_subset,
        interpolation=sm.params.interpolation,
        dataset=sm.wildcards.dataset,
    )
    log.info("%s on %s: imported %s", sm.wildcards.method, sm.wildcards.dataset, info)
