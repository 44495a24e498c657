# Stage 3: multi-scale edge patches of DHDE (Park et al. CVPR'17) and its feature analysis.
# (Comments instead of rule docstrings: snakefmt 0.x moves docstrings below `benchmark:`.)


# Labelled 15x15 / 27x27 edge patches of the sharp images, 11 blur labels (HDF5).
rule sample_patches:
    input:
        manifest="results/data/{dataset}/manifest.csv",
    output:
        h5="results/patches/{dataset}.h5",
    log:
        "logs/patches/{dataset}.log",
    benchmark:
        "benchmarks/out/patches/{dataset}.tsv"
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("sample_patches")
    resources:
        **job_resources("sample_patches"),
    params:
        cfg=config["patches"],
        seed=config["seed"],
    script:
        "../scripts/sample_patches.py"


# Paper Table 1: accuracy of each DHDE feature set on held-out source images.
rule dhde_feature_table:
    input:
        patches=expand(
            "results/patches/{dataset}.h5", dataset=config["dhde_features"]["datasets"]
        ),
    output:
        csv=report(
            "results/tables/table_dhde_features.csv",
            caption="../report/dhde_features_table.rst",
            category="Tables",
        ),
        md="results/tables/table_dhde_features.md",
        tex="results/tables/table_dhde_features.tex",
    log:
        "logs/tables/table_dhde_features.log",
    benchmark:
        "benchmarks/out/tables/table_dhde_features.tsv"
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("dhde_feature_table")
    resources:
        **job_resources("dhde_feature_table", gpu=int(config["device"] != "cpu")),
    params:
        variants=config["dhde_features"]["variants"],
        params=config["dhde_features"]["params"],
        workdir="results/models/dhde_features",
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/dhde_feature_table.py"


# Paper Figure 3: average DCT, gradient and SVD features of sharp and blurry patches.
rule dhde_feature_figure:
    input:
        patches=expand(
            "results/patches/{dataset}.h5", dataset=config["dhde_features"]["datasets"]
        ),
    output:
        png=report(
            "results/figures/dhde_features.png",
            caption="../report/dhde_features_figure.rst",
            category="DHDE",
        ),
    log:
        "logs/figures/dhde_features.log",
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("dhde_feature_figure")
    resources:
        **job_resources("dhde_feature_figure"),
    script:
        "../scripts/dhde_feature_figure.py"
