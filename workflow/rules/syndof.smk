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
    threads: config["threads"]
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
    params:
        n=4,
    script:
        "../scripts/syndof_figure.py"
