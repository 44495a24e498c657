"""Rule render_syndof: thin-lens layered-blur renders of every source (Lee et al. CVPR'19)."""

from defocus.config import resolve_device
from defocus.logs import rule_log, set_threads
from defocus.render.workflow import depth_manifest_map, render_dataset

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    set_threads(sm.threads)
    cfg = sm.params.cfg
    render_dataset(
        cfg,
        sm.output.manifest,
        seed=sm.params.seed,
        depth_manifests=depth_manifest_map(cfg["sources"], list(sm.input.depth_manifests)),
        device=resolve_device(sm.params.device) if cfg["backend"] == "torch" else None,
    )
