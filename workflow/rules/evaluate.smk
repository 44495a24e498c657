# Stage 6a: per-image metrics and curves under the declared protocol (config `evaluation`).


rule evaluate:
    """Per-image metrics CSV, PR/F curves NPZ and a summary with bootstrap 95% CIs."""
    input:
        h5="results/predictions/{method}/{dataset}.h5",
        manifest="results/data/{dataset}/manifest.csv",
    output:
        csv="results/metrics/{method}/{dataset}.csv",
        npz="results/curves/{method}/{dataset}.npz",
        summary="results/metrics/{method}/{dataset}.summary.json",
    log:
        "logs/evaluate/{method}/{dataset}.log",
    benchmark:
        "benchmarks/out/evaluate/{method}/{dataset}.tsv"
    conda:
        "../../envs/defocus.yaml"
    threads: lookup(dpath="resources/evaluate/cpus_per_task", within=config, default=1)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(dpath="resources/evaluate/mem_mb", within=config, default=8000),
        runtime=lambda wc, attempt: attempt
        * lookup(dpath="resources/evaluate/runtime", within=config, default=60),
        cpus_per_task=lambda wc, threads: threads,
    params:
        protocol=config["evaluation"],
        seed=config["seed"],
    script:
        "../scripts/evaluate.py"


rule tables:
    """table1 (DeFusionNet Table 1 layout), runtime table, ablations; CSV, Markdown, LaTeX."""
    input:
        summaries=summaries(),
    output:
        table1=report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
        ),
        runtime=report(
            "results/tables/table_runtime.csv",
            caption="../report/runtime.rst",
            category="Tables",
        ),
        readme="results/tables/README.md",
    log:
        "logs/evaluate/tables.log",
    conda:
        "../../envs/defocus.yaml"
    threads: lookup(dpath="resources/tables/cpus_per_task", within=config, default=1)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(dpath="resources/tables/mem_mb", within=config, default=4000),
        runtime=lambda wc, attempt: attempt
        * lookup(dpath="resources/tables/runtime", within=config, default=30),
        cpus_per_task=lambda wc, threads: threads,
    params:
        protocol=config["evaluation"],
        methods=METHODS,
        extra_tables=extra_tables(),
    script:
        "../scripts/tables.py"
