# Stage 1: datasets. Downloads go to resources/, normalised manifests to results/data/.


rule fetch_dataset:
    """Verified download + unpack of a registry dataset (skipped when datasets.<name>.root is set)."""
    output:
        marker=f"{RESOURCES}/{{dataset}}/.fetched.json",
    log:
        "logs/data/fetch_{dataset}.log",
    benchmark:
        "benchmarks/out/data/fetch_{dataset}.tsv"
    wildcard_constraints:
        dataset=alternatives(REGISTRY_SETS),
    retries: 1
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("fetch_dataset")
    resources:
        **job_resources("fetch_dataset"),
    params:
        entry=lambda wc: dataset_cfg(wc.dataset),
    script:
        "../scripts/fetch_dataset.py"


rule registry_manifest:
    """Normalise a registry dataset's layout into the manifest contract (GT 255 = blurred)."""
    input:
        fetched=fetch_input,
    output:
        manifest="results/data/{dataset}/manifest.csv",
    log:
        "logs/data/manifest_{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(REGISTRY_SETS),
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("registry_manifest")
    resources:
        **job_resources("registry_manifest"),
    params:
        entry=lambda wc: dataset_cfg(wc.dataset),
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
    threads: job_threads("demo_sharp")
    resources:
        **job_resources("demo_sharp"),
    params:
        photos=config["demo_sources"]["photos"],
        max_side=config["demo_sources"]["max_side"],
    script:
        "../scripts/demo_sharp.py"


# The authors' released files (defocus.releases), one rule each: weights and auxiliary data.
RELEASE_RULES = {
    "dhde": "fetch_weights",
    "dmenet": "fetch_weights_dmenet",
    "vgg19": "fetch_vgg19",
    "rtf_conversion": "fetch_rtf_conversion",
}

for _release, _rule in RELEASE_RULES.items():

    rule:
        """An authors' release (defocus.releases: the DHDE Caffe model, DMENet's DMENet_BDCS.zip
        or the Caffe VGG19's vgg19.zip, whose one file is extracted, or DMENet's RTF conversion
        table), verified download to its resources path; config releases.<name> may name a
        mirror and pin its file.
        """
        name:
            _rule
        output:
            file=f"{RESOURCES}/{get_release(_release).output}",
        log:
            f"logs/data/fetch_release_{_release}.log",
        retries: 1
        conda:
            "../../envs/defocus.yaml"
        threads: job_threads("fetch_release")
        resources:
            **job_resources("fetch_release"),
        params:
            release=_release,
            # a mirror and sha256 pin of the release (config releases.<name>; optional)
            entry=config["releases"].get(_release) or {},
        script:
            "../scripts/fetch_release.py"
