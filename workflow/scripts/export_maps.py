"""Rule export_maps: the maps of a prediction file as a folder of PNGs (255 = blurred)."""

from defocus.io.export import export_maps
from defocus.logs import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    written = export_maps(
        sm.input.h5, sm.output.maps, fmt=sm.params.fmt, rounding=sm.params.rounding
    )
    log.info("wrote %d map(s) to %s", len(written), sm.output.maps)
