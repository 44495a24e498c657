# Stage 5: every method on every test set. Maps in HDF5 (contract: src/defocus/io/predictions.py).


rule predict:
    """Run one method on the test split of one dataset; time every image."""
    input:
        manifest="results/data/{dataset}/manifest.csv",
        checkpoint=checkpoint_input,
    output:
        h5="results/predictions/{method}/{dataset}.h5",
    log:
        "logs/predict/{method}/{dataset}.log",
    benchmark:
        "benchmarks/out/predict/{method}/{dataset}.tsv"
    wildcard_constraints:
        # external methods (config external_methods) come from rule import_external
        method=NOT_EXTERNAL,
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("predict")
    resources:
        **job_resources("predict", gpu=predict_gpu),
    params:
        params=lambda wc: method_params(config, wc.method),
        device=config["device"],
        split="test",
        max_side=config["methods"]["max_side"],
    script:
        "../scripts/predict.py"
