"""Rule sample_patches: DHDE edge patches of one dataset's sharp images -> HDF5."""

from defocus.logs import rule_log, set_threads

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    set_threads(sm.threads)
    from defocus.features.patches import sample_patches

    cfg = sm.params.cfg
    sample_patches(
        sm.input.manifest,
        sm.output.h5,
        n_per_image=cfg["n_per_image"],
        seed=sm.params.seed,
        val_fraction=cfg["val_fraction"],
        canny_weak=cfg["canny_weak"],
        canny_strong=cfg["canny_strong"],
        split=cfg["split"],
        max_images=cfg["max_images"],
    )
