# defocus-bench: the whole literature in one DAG. Thin on purpose: the stages live in
# workflow/rules/*.smk, the logic in the `defocus` package (src/defocus).
import sys

from snakemake.utils import min_version

from defocus.config import ConfigError, validate

min_version("9.0")


# The embedded demo is the default config. A --configfile replaces it instead of being merged
# over it (Snakemake's default), so config/paper.yaml runs with its own settings only; an
# overlay on the demo names both, after the targets:
# snakemake TARGET --configfile config/config.yaml config/dhde_cpu.yaml
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Fails at start, with one line `config key X: message`, on an unknown key or method, a
# negative value or a missing key; fills every default so rules can index config directly.
try:
    validate(config, f"{workflow.basedir}/config/schema.yaml")
except ConfigError as e:
    sys.exit(str(e))


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# one wildcard name per concept: {method}, {dataset}; the rules that make a dataset's manifest
# constrain {dataset} to their own kind of names, so they never compete for one
wildcard_constraints:
    method=r"[^/]+",
    dataset=r"[^/]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/syndof.smk"
include: "workflow/rules/patches.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
