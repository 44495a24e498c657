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
        "\"$DEFOCUS_PYTHON\" {params.launcher}-m defocus.train --method {params.method} --params {params.params}"
        " --data {params.data} --workdir {params.workdir} --out {output.model}"
        " --device {params.device} --seed {params.seed} --log-file {log}"


rule fetch_weights:
    """The DHDE authors' trained model (github zzangjinsun/DHDE_CVPR17), verified download."""
    output:
        weights=f"{RESOURCES}/weights/dhde/release.caffemodel",
    log:
        "logs/data/fetch_weights_dhde.log",
    retries: 1
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("fetch_release")
    resources:
        **job_resources("fetch_release"),
    params:
        # a mirror and sha256 pin of the release (config releases.dhde; optional)
        entry=lambda wc: config["releases"].get("dhde") or {},
    script:
        "../scripts/fetch_weights.py"


rule fetch_weights_dmenet:
    """The DMENet authors' trained checkpoint (github codeslake/DMENet README: DMENet_BDCS.zip),
    verified download, DMENet_BDCS.npz extracted."""
    output:
        weights=f"{RESOURCES}/weights/dmenet/release.npz",
    log:
        "logs/data/fetch_weights_dmenet.log",
    retries: 1
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("fetch_release")
    resources:
        **job_resources("fetch_release"),
    params:
        release="dmenet",
        # a mirror and sha256 pin of the release (config releases.dmenet; optional)
        entry=lambda wc: config["releases"].get("dmenet") or {},
    script:
        "../scripts/fetch_weights.py"


rule fetch_vgg19:
    """The Caffe VGG19 the DMENet authors start from (release README step 6: vgg19.zip,
    vgg19.npy extracted), for `vgg_weights: release`."""
    output:
        weights=VGG19_RELEASE,
    log:
        "logs/data/fetch_vgg19.log",
    retries: 1
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("fetch_release")
    resources:
        **job_resources("fetch_release"),
    params:
        release="vgg19",
        # a mirror and sha256 pin (config releases.vgg19; optional)
        entry=lambda wc: config["releases"].get("vgg19") or {},
    script:
        "../scripts/fetch_weights.py"
