# The README's two commands: `make demo` (embedded default, offline, CPU) and `make test`.
# Both create .venv on first use and install the project from its own files.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
# The environment is requirements/lock.txt: every package at one version and one file (sha256)
# for CPython 3.11 on Linux x86_64, so two installs made on different days hold the same wheels.
# `make lock` resolves it again (newest versions pyproject.toml's ranges allow; the
# torch/torchvision pair stays unless TORCH names another, e.g.
# make lock TORCH="torch==2.15.0 torchvision==0.30.0").
LOCK := requirements/lock.txt
TORCH ?=

.PHONY: venv lock demo test lint report clean

venv: $(VENV)/.installed

# The lock's wheels are cp311 manylinux x86_64: name the interpreter before pip does.
$(VENV)/.installed: $(LOCK) pyproject.toml
	@$(PY) -c 'import platform as p, sys; ok = sys.version_info[:2] == (3, 11) and p.machine() == "x86_64" and p.system() == "Linux"; sys.exit(0 if ok else "$(LOCK) is for CPython 3.11 on Linux x86_64, not " + p.python_version() + " on " + p.system() + " " + p.machine() + ": run make PY=python3.11 there, or install the ranges (pip install -e .) and set DEFOCUS_ALLOW_DRIFT=1")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

lock:
	$(PY) requirements/relock.py $(if $(TORCH),--torch "$(TORCH)")

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
