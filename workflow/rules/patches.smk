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
    threads:
        lookup(
            dpath="resources/sample_patches/cpus_per_task",
            within=config,
            default=config["threads"],
        )
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(dpath="resources/sample_patches/mem_mb", within=config, default=16000),
        runtime=lambda wc, attempt: attempt
        * lookup(dpath="resources/sample_patches/runtime", within=config, default=240),
        cpus_per_task=lambda wc, threads: threads,
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
    threads:
        lookup(
            dpath="resources/dhde_feature_table/cpus_per_task",
            within=config,
            default=config["threads"],
        )
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(
            dpath="resources/dhde_feature_table/mem_mb", within=config, default=16000
        ),
        runtime=lambda wc, attempt: attempt
        * lookup(
            dpath="resources/dhde_feature_table/runtime", within=config, default=720
        ),
        cpus_per_task=lambda wc, threads: threads,
        gpu=lambda wc: 1 if config["device"] != "cpu" else 0,
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
    threads: lookup(dpath="resources/dhde_feature_figure/cpus_per_task", within=config, default=1)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * lookup(
            dpath="resources/dhde_feature_figure/mem_mb", within=config, default=8000
        ),
        runtime=lambda wc, attempt: attempt
        * lookup(
            dpath="resources/dhde_feature_figure/runtime", within=config, default=30
        ),
        cpus_per_task=lambda wc, threads: threads,
    script:
        "../scripts/dhde_feature_figure.py"
