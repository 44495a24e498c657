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
