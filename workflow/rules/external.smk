# Stage 5b: released result maps ("external methods", config `external_methods`) become
# prediction files, then go through the same evaluate rule and tables as every method.
# Needs from common.smk: EXTERNAL, external_cfg, external_maps_input.


rule import_external:
    """Match a folder of released maps to the test ids, resize to GT size, fix polarity."""
    input:
        maps=external_maps_input,
        manifest="results/data/{dataset}/manifest.csv",
    output:
        h5="results/predictions/{method}/{dataset}.h5",
    log:
        "logs/import_external/{method}/{dataset}.log",
    wildcard_constraints:
        method=alternatives(EXTERNAL),
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("import_external")
    resources:
        **job_resources("import_external"),
    params:
        polarity=lambda wc: external_cfg(wc.method)["polarity"],
        index_map=lambda wc: external_cfg(wc.method)["index_map"],
        allow_subset=lambda wc: external_cfg(wc.method)["allow_subset"],
        interpolation=lambda wc: external_cfg(wc.method)["interpolation"],
    script:
        "../scripts/import_external.py"


rule export_maps:
    """A prediction file as results/exports/{method}/{dataset}/<id>.png (255 = blurred)."""
    input:
        h5="results/predictions/{method}/{dataset}.h5",
    output:
        maps=directory("results/exports/{method}/{dataset}"),
    log:
        "logs/export_maps/{method}/{dataset}.log",
    wildcard_constraints:
        dataset=r"[^/]+",
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("export_maps")
    resources:
        **job_resources("export_maps"),
    params:
        fmt=config["export"]["format"],
        rounding=config["export"]["rounding"],
    script:
        "../scripts/export_maps.py"
