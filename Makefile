# Two commands matter: `make run` and `make test`. Everything else is a building block.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
# TF 2.16 + TFX 1.16 need Keras 2 (tf-keras); the variable must be set before Python starts.
export TF_USE_LEGACY_KERAS := 1
export PYTHONDONTWRITEBYTECODE := 1

# python3.10 may be a pyenv shim that fails unless 3.10 is the active version, so it is probed, not trusted.
define find_python310
for c in "$${PYTHON310:-}" python3.10 "$$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
         /usr/bin/python3.10 /usr/local/bin/python3.10; do \
  [ -n "$$c" ] && "$$c" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 \
    && { command -v "$$c" || echo "$$c"; } && break; \
done
endef

# serving/config/models.config names the Docker image's /models; locally that root is serving_model/.
LOCAL_MODEL_CONFIG := .serving/models.config
# `make serve` writes its launcher's pid there; `make stop` (another terminal) stops it and what it started.
SERVE_PID_FILE := .serving/serve.pid
SERVE_FLAGS := --model_config_file=$(LOCAL_MODEL_CONFIG) --monitoring_config_file=serving/config/monitoring.config \
	--pid-file=$(SERVE_PID_FILE)

.PHONY: help setup lock system-deps run pipeline serve stop score lint test test-fast bench bench-quality bench-scale bench-serving bench-outcomes bench-simulate simulate kubeflow-spec deploy-context clean

help:
	@echo "make run        set up if needed, run the pipeline on the bundled data, then serve the model"
	@echo "make test       set up if needed, run every test (unit + end-to-end)"
	@echo "make pipeline   run the pipeline only (ARGS='--data PATH ...' passes flags)"
	@echo "make test-fast  unit tests only (no end-to-end pipeline runs)"
	@echo "make lint       ruff (lint) + mypy (types); make test runs it first"
	@echo "make serve      serve the newest pushed model (REST 127.0.0.1:8501, gRPC 8500; ARGS passes flags)"
	@echo "                and Prometheus on 127.0.0.1:9090 (dashboard /consoles/churn.html), Pushgateway 9091, Alertmanager 9093"
	@echo "make stop       stop a running make serve (from another terminal; Ctrl-C in its own does the same)"
	@echo "make simulate   a simulated year: monthly retraining, judging, pushing and hot-swapping on generated months"
	@echo "                (ARGS='--months 12 --shift-at 6 --customers 10000 --window 3 --output DIR'; simulation.html)"
	@echo "                (every flag: make simulate ARGS=--help)"
	@echo "make score      rank customers by churn probability with factors, segment and action"
	@echo "                (ARGS='--data PATH [--top N] [--out PATH]'; the newest pushed model)"
	@echo "make bench      pipeline benchmark: cold and cached wall time, AUC vs Bayes AUC"
	@echo "make bench-quality  the model vs reference models (AUC, Brier, ECE, paired AUC interval) on 4 tables"
	@echo "make bench-scale    pipeline at 10k/100k/1M rows, in_memory vs multi_processing Beam (about 1 h)"
	@echo "make bench-serving  model server load benchmark (uses wrk when installed)"
	@echo "make bench-simulate wall time per simulated month at 10k and 100k customers, cold and cached"
	@echo "make bench-outcomes monitoring.outcomes on 1M predictions x 1M labels (budget 30 s)"
	@echo "make kubeflow-spec  compile the Kubeflow Pipelines v2 / Vertex AI spec (ARGS='--pipeline-root gs://... ';"
	@echo "                    a month of spans: ARGS+='--window 3 --month YYYY-MM --first-month YYYY-MM --schedule F')"
	@echo "make setup      create $(VENV) with Python 3.10 and the pinned requirements (runtime + dev)"
	@echo "make lock       re-resolve requirements.txt + requirements-dev.txt from the .in files (needs PyPI)"
	@echo "make system-deps  install the Debian packages the tests run (prometheus, chromium, postgresql, pushgateway, alertmanager)"
	@echo "make deploy-context  stage the Docker/Railway build folder (DEPLOY_DIR=$(DEPLOY_DIR)) from the pushed model"
	@echo "make clean      remove pipeline outputs and pushed models (keeps $(VENV))"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@py="$$($(find_python310))"; \
	if [ -z "$$py" ]; then \
	  echo "error: Python 3.10 is required (TFX 1.16 supports Python < 3.11) and was not found." >&2; \
	  echo "       Install it (e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv')," >&2; \
	  echo "       or point to it: make setup PYTHON310=/path/to/python3.10" >&2; \
	  exit 2; \
	fi; \
	echo "Creating $(VENV) with $$py"; \
	rm -rf $(VENV) && "$$py" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@# Every interpreter of this venv (scripts, notebooks, `python -m ...`) starts with Keras 2 selected.
	@echo 'import os; os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")' \
	  > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/churn_legacy_keras.pth"
	@touch $(STAMP)

# Re-resolves both locks together from the direct dependencies (requirements.in, requirements-dev.in) in a
# throw-away Python 3.10 venv: pip resolves without installing, tools/lock.py splits runtime from dev.
lock:
	@py="$$($(find_python310))"; [ -n "$$py" ] || { echo "error: Python 3.10 is required" >&2; exit 2; }; \
	tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	"$$py" -m venv "$$tmp/venv" && "$$tmp/venv/bin/pip" install --quiet "pip==26.3" packaging && \
	"$$tmp/venv/bin/pip" install --quiet --dry-run --ignore-installed --report "$$tmp/report.json" -r requirements-dev.in && \
	"$$tmp/venv/bin/python" tools/lock.py "$$tmp/report.json"

run: pipeline
	@$(MAKE) --no-print-directory serve ARGS=

pipeline: setup
	$(PY) local_pipeline.py $(ARGS)

# The model server plus a local Prometheus scraping it, a Pushgateway and an Alertmanager when installed
# (monitoring/serve.py); Ctrl-C stops them all.
serve: setup
	@$(PY) -m deploy.local_config --out $(LOCAL_MODEL_CONFIG)
	$(PY) -m monitoring.serve $(SERVE_FLAGS) $(ARGS)

stop: setup
	@$(PY) -m monitoring.serve --stop --pid-file=$(SERVE_PID_FILE)

# Batch scoring with the newest pushed model; a --model in ARGS overrides it.
score: setup
	$(PY) -m insights score --model serving_model/customer-model $(ARGS)

# What the tests run for real: Prometheus (+ promtool), Chromium, PostgreSQL (prediction store), Pushgateway and
# Alertmanager (+ amtool). Installed when missing and root.
SYSTEM_PACKAGES := prometheus chromium postgresql prometheus-pushgateway prometheus-alertmanager
system-deps:
	@missing="$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done)"; \
	if [ -z "$$missing" ]; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
	  echo "warning: the monitoring tests need these Debian packages; install them with:" >&2; \
	  echo "    sudo apt-get install -y $$missing" >&2; \
	fi

# ruff (rules in pyproject.toml [tool.ruff.lint]) on the whole repo, then mypy --strict on serving/, insights/,
# monitoring/, pipeline/ ([tool.mypy]); docs/development.md. `make test` runs it first, so a lint or type error fails CI.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: setup system-deps lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

bench: setup
	$(PY) bench/bench_pipeline.py $(ARGS)

bench-quality: setup
	$(PY) bench/bench_quality.py $(ARGS)

bench-scale: setup
	$(PY) bench/bench_scale.py $(ARGS)

# Compiles only (no cluster needed); see `python -m pipeline.kubeflow_v2 --help` for the flags.
kubeflow-spec: setup
	$(PY) -m pipeline.kubeflow_v2 $(ARGS)

bench-serving: setup
	@command -v wrk >/dev/null || echo "note: 'apt-get install -y wrk' gives a faster load generator than the Python fallback"
	$(PY) bench/bench_serving.py $(ARGS)

bench-outcomes: setup
	$(PY) bench/bench_outcomes.py $(ARGS)

bench-simulate: setup
	$(PY) bench/bench_simulate.py $(ARGS)

# Generated months end to end through the model server; `python -m simulation --help` lists the flags.
simulate: setup
	$(PY) -m simulation $(ARGS)

# Railway uploads what .gitignore allows, and serving_model/ is ignored: stage a self-contained build folder.
DEPLOY_DIR ?= ../customer-model-deploy
deploy-context: setup
	$(PY) -m deploy.context $(DEPLOY_DIR)

clean:
	rm -rf pipeline_output serving_model .serving
