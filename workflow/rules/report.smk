# Stage 6b: figures (PR and F-measure curves, qualitative grids) for the HTML report.


rule curves_figure:
    input:
        curves=expand("results/curves/{method}/{{dataset}}.npz", method=METHODS),
    output:
        pr=report(
            "results/figures/pr_{dataset}.png",
            caption="../report/pr.rst",
            category="Curves",
        ),
        f=report(
            "results/figures/fmeasure_{dataset}.png",
            caption="../report/fmeasure.rst",
            category="Curves",
        ),
    log:
        "logs/report/curves_{dataset}.log",
    """PR and F-vs-threshold curves of every method on one test set."""
    conda:
        "../../envs/defocus.yaml"
    params:
        methods=METHODS,
    script:
        "../scripts/curves_figure.py"


rule qualitative_figure:
    input:
        manifest="results/data/{dataset}/manifest.csv",
        h5=expand("results/predictions/{method}/{{dataset}}.h5", method=METHODS),
    output:
        png=report(
            "results/figures/qualitative_{dataset}.png",
            caption="../report/qualitative.rst",
            category="Qualitative",
        ),
    log:
        "logs/report/qualitative_{dataset}.log",
    """Input, GT and each method's map for the first test images."""
    conda:
        "../../envs/defocus.yaml"
    params:
        methods=METHODS,
        n=config["evaluation"]["qualitative_images"],
    script:
        "../scripts/qualitative_figure.py"
