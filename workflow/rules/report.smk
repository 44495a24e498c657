# Stage 6b: figures (PR and F-measure curves, qualitative grids) for the HTML report.


rule curves_figure:
    """PR and F-vs-threshold curves of every method on one test set."""
    input:
        curves=figure_inputs("results/curves/{method}/{dataset}.npz"),
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
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("curves_figure")
    resources:
        **job_resources("curves_figure"),
    params:
        methods=lambda wc: figure_methods(wc.dataset),
    script:
        "../scripts/curves_figure.py"


rule qualitative_figure:
    """Input, GT and each method's map for the first test images."""
    input:
        manifest="results/data/{dataset}/manifest.csv",
        h5=figure_inputs("results/predictions/{method}/{dataset}.h5"),
    output:
        png=report(
            "results/figures/qualitative_{dataset}.png",
            caption="../report/qualitative.rst",
            category="Qualitative",
        ),
    log:
        "logs/report/qualitative_{dataset}.log",
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("qualitative_figure")
    resources:
        **job_resources("qualitative_figure"),
    params:
        methods=lambda wc: figure_methods(wc.dataset),
        n=config["evaluation"]["qualitative_images"],
    script:
        "../scripts/qualitative_figure.py"
