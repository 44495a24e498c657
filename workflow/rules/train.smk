# Stage 4: training of the learned methods through the shared entry point (python -m defocus.train).


rule train:
    """Train one learned method; resumes from results/models/{method}/work/checkpoint.pt."""
    input:
        data=train_manifests,
    output:
        model="results/models/{method}/model.pt",
    log:
        "logs/train/{method}.log",
    benchmark:
        "benchmarks/out/train/{method}.tsv"
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("train")
    resources:
        **job_resources("train", gpu=train_gpus),
    params:
        launcher=train_launcher,
        data=train_data_arg,
        params=lambda wc: shlex.quote(json.dumps(run_params(wc.method))),
        method=lambda wc: shlex.quote(wc.method),
        workdir=lambda wc: f"results/models/{wc.method}/work",
        device=config["device"],
        seed=config["seed"],
    shell:
        '"$DEFOCUS_PYTHON" {params.launcher}-m defocus.train --method {params.method} --params {params.params}'
        " --data {params.data} --workdir {params.workdir} --out {output.model}"
        " --device {params.device} --seed {params.seed} --log-file {log}"


from defocus.releases import get_release

#: the authors' released weights (registry defocus.releases) -> the rule that fetches each
RELEASE_RULES = {
    "dhde": "fetch_weights",
    "dmenet": "fetch_weights_dmenet",
    "vgg19": "fetch_vgg19",
}

for _release, _rule in RELEASE_RULES.items():

    rule:
        """An authors' release (defocus.releases: the DHDE Caffe model, DMENet's DMENet_BDCS.zip
        or the Caffe VGG19's vgg19.zip, whose one file is extracted), verified download to its
        resources path; config releases.<name> may name a mirror and pin its file.
        """
        name:
            _rule
        output:
            weights=f"{RESOURCES}/{get_release(_release).output}",
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
            "../scripts/fetch_weights.py"
