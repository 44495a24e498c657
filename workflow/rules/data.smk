# Stage 1: datasets. Downloads go to resources/, normalised manifests to results/data/.


rule fetch_dataset:
    """Verified download + unpack of a registry dataset (skipped when datasets.<name>.root is set)."""
    output:
        marker=f"{RESOURCES}/{{registry_set}}/.fetched.json",
    log:
        "logs/data/fetch_{registry_set}.log",
    benchmark:
        "benchmarks/out/data/fetch_{registry_set}.tsv"
    retries: 1
    conda:
        "../../envs/defocus.yaml"
    params:
        entry=lambda wc: dataset_cfg(wc.registry_set),
    script:
        "../scripts/fetch_dataset.py"


rule registry_manifest:
    """Normalise a registry dataset's layout into the manifest contract (GT 255 = blurred)."""
    input:
        fetched=fetch_input,
    output:
        manifest="results/data/{registry_set}/manifest.csv",
    log:
        "logs/data/manifest_{registry_set}.log",
    conda:
        "../../envs/defocus.yaml"
    params:
        entry=lambda wc: dataset_cfg(wc.registry_set),
        seed=config["seed"],
    script:
        "../scripts/registry_manifest.py"


rule demo_sharp:
    """Sharp demo images: the photographs scikit-image ships (stand-in for the ILSVRC subset)."""
    output:
        manifest="results/data/demo_sharp/manifest.csv",
    log:
        "logs/data/demo_sharp.log",
    conda:
        "../../envs/defocus.yaml"
    params:
        photos=config["demo_sources"]["photos"],
        max_side=config["demo_sources"]["max_side"],
    script:
        "../scripts/demo_sharp.py"
