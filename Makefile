# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.local/bin:$(PATH)
UV ?= uv

.PHONY: deps test lint format unit interface workload e2e integration demo bench

deps:
	bash scripts/install-system-deps.sh
	$(UV) sync --frozen

## Everything CI runs: lint, unit, interface, workload and end-to-end tests.
test: deps
	$(UV) run --frozen tox -e lint,unit,interface,workload,e2e

lint: deps
	$(UV) run --frozen tox -e lint

format:
	$(UV) run --frozen tox -e format

unit interface workload e2e integration: deps
	$(UV) run --frozen tox -e $@

bench: deps
	$(UV) run --frozen python -m bench.backup_restore
