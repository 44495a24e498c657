# The README's two commands: `make demo` (embedded default, offline, CPU) and `make test`.
# Both create .venv on first use and install the project from its own files.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
# Pinned: the newest torch/torchvision pair on the package registry this project is built
# against; a newer pair works too (pyproject.toml only asks for torch>=2.2).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test lint report clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: venv
	$(BIN)/snakemake --cores $(CORES) all

report: demo
	$(BIN)/snakemake --cores $(CORES) --report report.html all

lint: venv
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint
	$(BIN)/snakemake -n --quiet rules --configfile=config/paper.yaml all

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf results logs benchmarks/out .snakemake report.html
