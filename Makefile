# Lindungi: the two commands are `make run` (the whole system with sample data) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
CACHE ?= $(or $(LINDUNGI_CACHE),$(HOME)/.cache/lindungi)
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
PY := .venv/bin/python
STACK := deploy/local/stack

.PHONY: help install test test-unit test-integration lint format schemas up down status run bench bench-smoke bench-backfill reliability reliability-soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(UV):
	python3 -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --quiet
	touch $@

install: .venv/.synced ## virtualenv from uv.lock, Kafka jars and FerretDB (cached per machine)
	$(STACK) install
	deploy/kubernetes/tools install

# The dashboard (services/reporting/dashboard): its charting library from the npm lockfile (the vendored copy is
# committed; `npm ci` lets a test prove it is the lockfile's) and Debian's chromium for its browser tests.
DASHBOARD := services/reporting/dashboard
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
.PHONY: dashboard-vendor dashboard-screenshots
install: $(DASHBOARD)/node_modules/.package-lock.json $(CHROMIUM)

$(DASHBOARD)/node_modules/.package-lock.json: $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --ignore-scripts --prefer-offline --cache $(CACHE)/npm

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-liberation

dashboard-vendor: $(DASHBOARD)/node_modules/.package-lock.json ## copy the charting library from the lockfile into the dashboard
	cp $(DASHBOARD)/node_modules/d3/dist/d3.min.js $(DASHBOARD)/node_modules/@observablehq/plot/dist/plot.umd.min.js \
	   $(DASHBOARD)/node_modules/topojson-client/dist/topojson-client.min.js $(DASHBOARD)/static/vendor/
	cp $(DASHBOARD)/node_modules/d3/LICENSE $(DASHBOARD)/static/vendor/LICENSE.d3
	cp $(DASHBOARD)/node_modules/@observablehq/plot/LICENSE $(DASHBOARD)/static/vendor/LICENSE.plot
	cp $(DASHBOARD)/node_modules/topojson-client/LICENSE $(DASHBOARD)/static/vendor/LICENSE.topojson-client

dashboard-screenshots: install ## the PNGs in docs/dashboard/ (national, province, city) from a real service
	$(PY) -m tests.e2e.dashboard.screenshots

test: install ## everything: unit, integration (real Kafka + FerretDB, started if needed), end to end
	$(PY) -m pytest

test-unit: .venv/.synced ## the pure tests only, no servers
	$(PY) -m pytest tests/unit

test-integration: install
	$(PY) -m pytest tests/integration

lint: .venv/.synced ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

.PHONY: kubernetes-check
kubernetes-check: .venv/.synced ## the Kubernetes chart: catalogue current, rendered, every object validated offline
	deploy/kubernetes/tools check

format: .venv/.synced
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

schemas: .venv/.synced ## regenerate docs/schemas/, docs/asyncapi/ and docs/topics.md after changing events or subscribers
	$(PY) -m shared.schema_export
	$(PY) -m services.registration.domain.reference
	env -i PATH="$$PATH" HOME="$$HOME" $(PY) -m services.asyncapi
	$(PY) -c 'from shared.topics import markdown_table; print("# Topic catalogue\n\nGenerated from shared/topics.py by make schemas.\n"); print(markdown_table())' > docs/topics.md

up: install ## start Kafka and FerretDB natively (data in .local/)
	$(STACK) start

down: ## stop everything `make up` or `make run` started
	@if [ -x $(PY) ]; then $(PY) deploy/local/run.py down; else $(STACK) stop; fi

status:
	$(STACK) status

run: install ## the whole system with sample data flowing (compose with a Docker engine, else native)
	$(PY) deploy/local/run.py up

bench: install ## benchmarks against the local stack; writes docs/benchmarks.md
	$(PY) -m bench

bench-smoke: install ## the benchmark harness at a tiny scale (seconds, no targets judged); writes .local/bench/smoke.md
	$(PY) -m bench --scale smoke --runs 1 --out .local/bench/smoke.md

bench-backfill: install ## the issue's backfill at its size, 3 runs (1.5 to 2 hours on 2 cores); writes docs/benchmarks-backfill-1m.md
	$(PY) -m bench --scenarios backfill --set backfill=1000000 --set budget=2700 --profile "" --out docs/benchmarks-backfill-1m.md

reliability: install ## the full crash, fault and bad-input run; writes docs/reliability.md
	$(PY) -m tests.e2e.reliability --full

# Not in CI (over an hour on 2 cores; root, for the store's tmpfs): 200,000 requests under 100 random faults,
# then 100,000 fuzzed inputs through the intake topic. SEED replays a run: make reliability-soak SEED=7
SEED ?= 20250309
reliability-soak: install ## the soak: 200,000 requests, 100 random faults, 100,000 fuzzed inputs; writes docs/reliability.md
	$(PY) -m tests.e2e.reliability --soak --seed $(SEED)
	$(PY) -m tests.e2e.fuzz --inputs 100000 --seed $(SEED)

clean: down ## stop and delete local data (downloads stay cached)
	$(STACK) reset
	rm -rf .venv
