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
    threads: lookup(dpath="resources/fetch_dataset/cpus_per_task", within=config, default=1)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(dpath="resources/fetch_dataset/mem_mb", within=config, default=2000),
        runtime=lambda wc, attempt: attempt
        * lookup(dpath="resources/fetch_dataset/runtime", within=config, default=240),
        cpus_per_task=lambda wc, threads: threads,
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
    threads: lookup(dpath="resources/registry_manifest/cpus_per_task", within=config, default=1)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(
            dpath="resources/registry_manifest/mem_mb", within=config, default=4000
        ),
        runtime=lambda wc, attempt: attempt
        * lookup(
            dpath="resources/registry_manifest/runtime", within=config, default=60
        ),
        cpus_per_task=lambda wc, threads: threads,
    params:
        entry=lambda wc: dataset_cfg(wc.registry_set),
        seed=config["seed"],
        fingerprint=root_fingerprint,
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
    threads: lookup(dpath="resources/demo_sharp/cpus_per_task", within=config, default=1)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(dpath="resources/demo_sharp/mem_mb", within=config, default=2000),
        runtime=lambda wc, attempt: attempt
        * lookup(dpath="resources/demo_sharp/runtime", within=config, default=10),
        cpus_per_task=lambda wc, threads: threads,
    params:
        photos=config["demo_sources"]["photos"],
        max_side=config["demo_sources"]["max_side"],
    script:
        "../scripts/demo_sharp.py"


rule fetch_rtf_conversion:
    """DMENet's RTF blurMap -> Gaussian sigma table (evaluation/RTF/convertion.mat), verified."""
    output:
        table=RTF_CONVERSION,
    log:
        "logs/data/fetch_rtf_conversion.log",
    retries: 1
    conda:
        "../../envs/defocus.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        # a mirror and sha256 pin (config releases.rtf_conversion; optional)
        entry=lambda wc: config["releases"].get("rtf_conversion") or {},
    script:
        "../scripts/fetch_rtf_conversion.py"
