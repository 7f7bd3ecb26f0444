# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.local/bin:$(PATH)
UV ?= uv

.PHONY: deps test lint format unit interface dispatch workload e2e integration demo bench pack

deps:
	bash scripts/install-system-deps.sh
	$(UV) sync --frozen

## Everything CI runs: lint, unit, interface, adopter, dispatch, workload and end-to-end tests.
test: deps
	$(UV) run --frozen tox -e lint,unit,interface,adopter,dispatch,workload,e2e

lint: deps
	$(UV) run --frozen tox -e lint

format:
	$(UV) run --frozen tox -e format

unit interface dispatch workload e2e: deps
	$(UV) run --frozen tox -e $@

## Benchmarks (each starts its own MariaDB and/or Ceph RGW; bench/README.md): backup and
## restore throughput against the aws CLI and rclone, point-in-time recovery's binlog
## replay rate, then the control plane: catalog reads at 100/500/2,000 backups and the
## largest relation data the bounds allow.
BENCH_BACKUP_ARGS ?= --sizes 256
BENCH_REPLAY_ARGS ?= --size-mb 64
bench: deps
	bash bench/setup.sh
	$(UV) run --frozen python -m bench.backup_restore $(BENCH_BACKUP_ARGS)
	$(UV) run --frozen python -m bench.binlog_replay $(BENCH_REPLAY_ARGS)
	$(UV) run --frozen python -m bench.catalog_scale
	$(UV) run --frozen python -m bench.relation_bounds

## Integration tests on a Juju controller (see docs/how-to/run-integration-tests.md);
## they skip with the reason when no controller or no S3 settings are found.
integration:
	$(UV) sync --frozen
	$(UV) run --frozen tox -e integration

## Stage each charm with lib/ into build/<charm>/ and pack it there (needs charmcraft + LXD).
pack:
	$(UV) run --frozen python scripts/stage_charm.py --out build backup-manager mysql-server
	cd build/backup-manager && charmcraft pack
	cd build/mysql-server && charmcraft pack
	@ls -1 build/*/*.charm

## The demo: a local MariaDB and Ceph S3, both charms' real code through Scenario, scenario A.
demo: deps
	$(UV) run --frozen python -m tests.e2e.demo
