# Sketch-based image retrieval study. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PROFILE ?= cpu
DATASET ?= embedded
DATA_ROOT ?=
REPORTS_DIR ?= reports
PYTHON ?= python3
VENV ?= .venv
KERNEL ?= sbir
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PKG_SRC := $(shell find sbir_utils -name '*.py' -o -name '*.txt' -o -name '*.json' 2>/dev/null)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
KNOWN_PROFILES := smoke, cpu, full

# A profile is configs/<PROFILE>.yaml: refuse an unknown one in one line instead of make's "No rule to make target".
ifneq ($(filter reproduce data $(REPORTS_DIR)/.stamp-%,$(MAKECMDGOALS)),)
ifeq ($(wildcard configs/$(PROFILE).yaml),)
$(error PROFILE=$(PROFILE) is not a known profile: use one of $(KNOWN_PROFILES) (configs/<profile>.yaml))
endif
endif

.PHONY: help venv kernel data reproduce app test test-unit test-notebooks test-e2e lint lab bench bench-gpu clean distclean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'
	@echo "  Variables: PROFILE=smoke|cpu|full (default cpu)  DATASET=embedded|<index dir name>  DATA_ROOT=<index dir>  REPORTS_DIR=reports"

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (sbir)" >/dev/null
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv with the pinned packages and register the Jupyter kernel (skipped when up to date)

kernel: $(STAMP) ## (Re)register the project's Jupyter kernel "sbir"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (sbir)"

data: $(STAMP) ## Generate the embedded data set for PROFILE (skipped when its manifest matches)
	$(PY) -m sbir_utils data --profile $(PROFILE)

$(REPORTS_DIR)/.stamp-$(PROFILE)-$(DATASET): $(STAMP) $(NOTEBOOKS) $(PKG_SRC) configs/$(PROFILE).yaml
	$(PY) -m sbir_utils reproduce --profile $(PROFILE) --dataset $(DATASET) $(if $(DATA_ROOT),--data_root $(DATA_ROOT)) --reports_dir $(REPORTS_DIR) --kernel $(KERNEL)
	@touch $@

reproduce: $(REPORTS_DIR)/.stamp-$(PROFILE)-$(DATASET) ## Run the whole study (data, notebooks 01-06, HTML reports) for PROFILE
	@echo "Reports: $(REPORTS_DIR)/index.html"

# Opens the runs named in $(REPORTS_DIR)/run_metadata.json; says to run `make reproduce` first when there are none.
app: $(STAMP) ## Web page on http://127.0.0.1:8000: draw or upload a sketch, see the top-k test photos (APP_ARGS="--port 8001 ...")
	SBIR_REPORTS_DIR=$(abspath $(REPORTS_DIR)) $(PY) -m sbir_utils app $(APP_ARGS)

# Tests never touch the project's data/, runs/ or reports/: everything goes under build/test/.
TEST_ENV := HF_HUB_OFFLINE=1 SBIR_DATA_DIR=$(CURDIR)/build/test/data \
	SBIR_RUNS_DIR=$(CURDIR)/build/test/runs SBIR_REPORTS_DIR=$(CURDIR)/build/test/reports

test: $(STAMP) ## Unit tests, nbval over the notebooks (smoke defaults) and one end-to-end smoke reproduce
	$(TEST_ENV) $(PY) -m pytest -q --durations=10 --nbval-lax --nbval-kernel-name $(KERNEL) tests notebooks

bench: $(STAMP) ## Run the benchmark suite and write BENCHMARKS.md
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench.py $(BENCH_ARGS)

# On a GPU machine (docs/benchmarks.md): the race uses the seed's checkout in build/seed-repo when there is one.
# PY=python3 runs it with that interpreter's packages instead of .venv (which is then not built).
bench-gpu: $(if $(filter $(VENV)/bin/python,$(PY)),$(STAMP)) ## GPU section of BENCHMARKS.md: throughput at 224 px, the seed race (BENCH_GPU_ARGS=...)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench_gpu.py $(if $(wildcard build/seed-repo/train.py),--seed_repo build/seed-repo) $(BENCH_GPU_ARGS)

# In notebooks a trailing ';' is deliberate (it hides a figure's repr), so E703 is ignored there.
lint: $(STAMP) ## ruff over the package, tests and notebooks
	$(PY) -m ruff check sbir_utils tests notebooks

lab: $(STAMP) ## Start JupyterLab on the project's kernel (adds --allow-root when run as root)
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean: ## Remove generated reports, runs and data (keeps .venv)
	rm -rf runs build data
	find reports -mindepth 1 ! -name README.md -exec rm -rf {} +

distclean: clean ## Also remove .venv
	rm -rf $(VENV)
