# Stage 2: SYNDOF renders (Lee et al. CVPR'19, Sec. 3) from depth sources.


rule render_syndof:
    """Thin-lens layered blur of every source image; binary GT, sigma, CoC, depth per sample."""
    input:
        depth_manifests=syndof_depth_manifests,
    output:
        manifest="results/data/{dataset}/manifest.csv",
    log:
        "logs/syndof/{dataset}.log",
    benchmark:
        "benchmarks/out/syndof/{dataset}.tsv"
    wildcard_constraints:
        dataset=alternatives(SYNDOF_SETS),
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("render_syndof")
    resources:
        **job_resources("render_syndof", gpu=render_gpu),
    params:
        cfg=lambda wc: config["syndof"][wc.dataset],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/render_syndof.py"


rule syndof_figure:
    """Input, depth, sigma, rendered image and binary map of a few samples."""
    input:
        manifest="results/data/{dataset}/manifest.csv",
    output:
        png=report(
            "results/figures/syndof_{dataset}.png",
            caption="../report/syndof.rst",
            category="SYNDOF",
        ),
    log:
        "logs/syndof/figure_{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(SYNDOF_SETS),
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("syndof_figure")
    resources:
        **job_resources("syndof_figure"),
    params:
        n=4,
    script:
        "../scripts/syndof_figure.py"
