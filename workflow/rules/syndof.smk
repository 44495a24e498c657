# Stage 2: SYNDOF renders (Lee et al. CVPR'19, Sec. 3) from depth sources.


rule render_syndof:
    """Thin-lens layered blur of every source image; binary GT, sigma, CoC, depth per sample."""
    input:
        depth_manifests=syndof_depth_manifests,
    output:
        manifest="results/data/{syndof_set}/manifest.csv",
    log:
        "logs/syndof/{syndof_set}.log",
    benchmark:
        "benchmarks/out/syndof/{syndof_set}.tsv"
    conda:
        "../../envs/defocus.yaml"
    threads:
        lookup(
            dpath="resources/render_syndof/cpus_per_task",
            within=config,
            default=config["threads"],
        )
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(dpath="resources/render_syndof/mem_mb", within=config, default=16000),
        runtime=lambda wc, attempt: attempt
        * lookup(dpath="resources/render_syndof/runtime", within=config, default=720),
        cpus_per_task=lambda wc, threads: threads,
        gpu=lambda wc: (
            1
            if config["syndof"][wc.syndof_set].get("backend") == "torch"
            and config["device"] != "cpu"
            else 0
        ),
    params:
        cfg=lambda wc: config["syndof"][wc.syndof_set],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/render_syndof.py"


rule syndof_figure:
    """Input, depth, sigma, rendered image and binary map of a few samples."""
    input:
        manifest="results/data/{syndof_set}/manifest.csv",
    output:
        png=report(
            "results/figures/syndof_{syndof_set}.png",
            caption="../report/syndof.rst",
            category="SYNDOF",
        ),
    log:
        "logs/syndof/figure_{syndof_set}.log",
    conda:
        "../../envs/defocus.yaml"
    threads: lookup(dpath="resources/syndof_figure/cpus_per_task", within=config, default=1)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(dpath="resources/syndof_figure/mem_mb", within=config, default=4000),
        runtime=lambda wc, attempt: attempt
        * lookup(dpath="resources/syndof_figure/runtime", within=config, default=30),
        cpus_per_task=lambda wc, threads: threads,
    params:
        n=4,
    script:
        "../scripts/syndof_figure.py"
