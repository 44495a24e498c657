# Stage 6a: per-image metrics and curves under the configured protocol preset (config
# `evaluation.protocol`, default declared), and every method under every tabulated preset.
from defocus.evaluate.metrics import describe_protocol
from defocus.evaluate.protocols import config_errors as protocol_errors
from defocus.evaluate.protocols import preset_protocol
from defocus.methods.spec import base_name

_preset_errors = protocol_errors(config["evaluation"])
if _preset_errors:  # the messages alone, without a traceback
    sys.exit("\n".join(_preset_errors))

# methods with ablation variants (name@key=value): one table_ablation_<base> each
ABLATION_BASES = sorted({base_name(m) for m in METHODS if "@" in m})
# the configured protocol, as the report captions print it (the tables' own captions are
# rendered from the protocol their summaries record)
RUN_PROTOCOL = preset_protocol(
    config["evaluation"]["protocol"], config["evaluation"], config["seed"], TEST_SETS[0]
)
# presets of results/tables/table_protocols ([] = no such table)
TABULATE = list(config["evaluation"]["tabulate"])


# every prediction file scored under the tabulated presets (external rows where the
# external method has maps for the dataset)
PROTOCOL_RECORDS = expand(
    "results/protocols/{method}/{dataset}.json", method=METHODS, dataset=TEST_SETS
) + [f"results/protocols/{m}/{d}.json" for m, d in external_pairs()]


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
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        protocol=config["evaluation"],
        seed=config["seed"],
    script:
        "../scripts/evaluate.py"


rule evaluate_protocols:
    """One prediction file scored under every tabulated protocol preset (no bootstrap)."""
    input:
        h5="results/predictions/{method}/{dataset}.h5",
        manifest="results/data/{dataset}/manifest.csv",
    output:
        json="results/protocols/{method}/{dataset}.json",
    log:
        "logs/evaluate/protocols/{method}/{dataset}.log",
    benchmark:
        "benchmarks/out/evaluate_protocols/{method}/{dataset}.tsv"
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        presets=TABULATE,
        evaluation=config["evaluation"],
        seed=config["seed"],
    script:
        "../scripts/evaluate_protocols.py"


rule protocols_table:
    """table_protocols: every method x every tabulated preset, ranks, Kendall's tau against
    declared; and the figure of ranks across presets."""
    input:
        records=PROTOCOL_RECORDS,
    output:
        csv=report(
            "results/tables/table_protocols.csv",
            caption="../report/table_protocols.rst",
            category="Tables",
        ),
        md="results/tables/table_protocols.md",
        tex="results/tables/table_protocols.tex",
        json="results/tables/table_protocols.json",
        png=report(
            "results/figures/protocols.png",
            caption="../report/protocols_figure.rst",
            category="Protocols",
        ),
        pdf="results/figures/protocols.pdf",
    log:
        "logs/evaluate/table_protocols.log",
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("tables")
    resources:
        **job_resources("tables"),
    params:
        presets=TABULATE,
        evaluation=config["evaluation"],
        seed=config["seed"],
        first_test_set=TEST_SETS[0],
    script:
        "../scripts/protocols_table.py"


rule tables:
    """table1 (DeFusionNet Table 1 layout), runtime and continuous-GT tables and the tables'
    README; each table as CSV, Markdown, LaTeX and a JSON sidecar."""
    input:
        summaries=summaries(),
        # the README lists the ablation tables: they are made first
        ablations=expand(
            "results/tables/table_ablation_{base}.csv", base=ABLATION_BASES
        ),
    output:
        table1=report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
        ),
        table1_md="results/tables/table1.md",
        table1_tex="results/tables/table1.tex",
        table1_json="results/tables/table1.json",
        runtime=report(
            "results/tables/table_runtime.csv",
            caption="../report/runtime.rst",
            category="Tables",
        ),
        runtime_md="results/tables/table_runtime.md",
        runtime_tex="results/tables/table_runtime.tex",
        runtime_json="results/tables/table_runtime.json",
        continuous=report(
            "results/tables/table_continuous.csv",
            caption="../report/continuous.rst",
            category="Tables",
        ),
        continuous_md="results/tables/table_continuous.md",
        continuous_tex="results/tables/table_continuous.tex",
        continuous_json="results/tables/table_continuous.json",
        readme=report(
            "results/tables/README.md",
            caption="../report/tables_readme.rst",
            category="Tables",
        ),
    log:
        "logs/evaluate/tables.log",
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("tables")
    resources:
        **job_resources("tables"),
    params:
        protocol_text=lambda wc: describe_protocol(**RUN_PROTOCOL),
        rtf_sigma_clip=config["evaluation"]["rtf_sigma_clip"],
        ablation_bases=ABLATION_BASES,
        extra_tables=extra_tables(),
        evaluation=config["evaluation"],
        seed=config["seed"],
        first_test_set=TEST_SETS[0],
    script:
        "../scripts/tables.py"


rule ablation_table:
    """One method's ablation variants (base@key=value) side by side."""
    input:
        summaries=lambda wc: summaries(
            methods=[m for m in METHODS if base_name(m) == wc.base]
        ),
    output:
        csv=report(
            "results/tables/table_ablation_{base}.csv",
            caption="../report/ablation.rst",
            category="Tables",
        ),
        md="results/tables/table_ablation_{base}.md",
        tex="results/tables/table_ablation_{base}.tex",
        json="results/tables/table_ablation_{base}.json",
    log:
        "logs/evaluate/table_ablation_{base}.log",
    wildcard_constraints:
        base=alternatives(ABLATION_BASES),
    conda:
        "../../envs/defocus.yaml"
    threads: job_threads("tables")
    resources:
        **job_resources("tables"),
    params:
        protocol_text=lambda wc: describe_protocol(**RUN_PROTOCOL),
    script:
        "../scripts/ablation_table.py"
