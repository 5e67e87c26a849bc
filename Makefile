# Floe's everyday commands. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
CACHE_BIN := $(HOME)/.cache/floe/bin
MINIO := integration/minio.sh
KAFKA := integration/kafka.sh
MARIADB := integration/mariadb.sh
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(CACHE_BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# promtool from Prometheus's Go module (v0.316.0 is Prometheus 3.x), pinned.
PROMTOOL_VERSION := v0.316.0
PROMTOOL := $(CACHE_BIN)/promtool-$(PROMTOOL_VERSION)

# with-minio runs $(1) with MinIO started (integration/minio.sh, cached under
# ~/.cache/floe) and its FLOE_S3_* variables exported. MinIO is stopped again
# only if this invocation started it (in CI, .ci/run starts and stops it).
define with-minio
	@started=; if ! $(MINIO) status; then started=1; fi; \
	trap 'if [ -n "$$started" ]; then $(MINIO) stop; fi' EXIT; \
	s3env=$$($(MINIO) start); eval "$$s3env"; \
	echo "+ $(1)"; $(1)
endef

# with-servers is with-minio plus the local Kafka broker (integration/kafka.sh,
# cached under ~/.cache/floe; FLOE_KAFKA_BROKERS exported) and MariaDB
# (integration/mariadb.sh, data under ~/.cache/floe; FLOE_MYSQL_DSN exported).
# Each server is stopped again only if this invocation started it.
define with-servers
	@started=; kstarted=; mstarted=; if ! $(MINIO) status; then started=1; fi; if ! $(KAFKA) status; then kstarted=1; fi; \
	if ! $(MARIADB) status; then mstarted=1; fi; \
	trap 'if [ -n "$$started" ]; then $(MINIO) stop; fi; if [ -n "$$kstarted" ]; then $(KAFKA) stop; fi; if [ -n "$$mstarted" ]; then $(MARIADB) stop; fi' EXIT; \
	s3env=$$($(MINIO) start); eval "$$s3env"; \
	kenv=$$($(KAFKA) start); eval "$$kenv"; \
	menv=$$($(MARIADB) start); eval "$$menv"; \
	echo "+ $(1)"; $(1)
endef

.PHONY: help demo build test test-short test-integration bench bench-keyed bench-keyed-kafka lint clean soak-upsert warehouse warehouse-mustshow check-rules soak bench-anchors bench-anchors-short bench-catalog bench-catalog-short

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

demo: ## write a demo lake to ./demo-lake and show it
	$(GO) run ./cmd/floe demo

build: ## build bin/floe
	$(GO) build -o bin/floe ./cmd/floe

test: ## all tests, with -race, against a local MinIO and Kafka broker
	$(call with-servers,$(GO) test -race -count=1 -timeout 30m ./...)

test-short: ## quick tests, no MinIO needed
	$(GO) test -short -count=1 ./...

# RUN=regexp limits the tests (CI runs RUN=TestEngines after `make test`).
test-integration: ## crash tests + engines matrix (-tags integration): MinIO, PostgreSQL, REST catalog, PyIceberg/DuckDB/Spark
	$(call with-servers,integration/engines/with-engines.sh $(GO) test -race -count=1 -tags integration -timeout 60m $(if $(RUN),-run '$(RUN)') ./integration/...)

# SOAK=duration sets how long the faults go on (CI's `make test` runs a 75s one).
SOAK ?= 10m
soak: ## every daemon at once under injected faults and SIGKILLs for SOAK (10m), then checks exactly-once
	$(call with-servers,FLOE_SOAK_DURATION=$(SOAK) $(GO) test -count=1 -timeout 3h -run '^TestSoak$$' -v ./integration/)

bench: ## benchmarks, against a local MinIO and Kafka broker; output also in bench.txt
	$(call with-servers,$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./... | tee bench.txt)

# Issue 17's must-show for keyed tables (not CI): a ROWS-row MariaDB table and
# a 1M-row baseline, RATE updates/s for MINUTES minutes each, compaction on:
# RSS, CPU-s per 10k updates, restart until visible, data files, mirror check.
# Restart until visible is measured twice: after a SIGKILL with the
# persistent key index, and with the index removed (rebuild).
# Quick run: make bench-keyed ROWS=1000000 MINUTES=1; BASELINE=0 skips the
# 1M-row baseline of a larger run.
ROWS ?= 10000000
MINUTES ?= 10
RATE ?= 500
BASELINE ?= 1
bench-keyed: ## keyed tables at scale (issue 17): ROWS=10000000 MINUTES=10 RATE=500 BASELINE=1; output also in bench-keyed.txt
	$(call with-servers,FLOE_BENCH_KEYED=1 FLOE_BENCH_KEYED_ROWS=$(ROWS) FLOE_BENCH_KEYED_MINUTES=$(MINUTES) FLOE_BENCH_KEYED_RATE=$(RATE) FLOE_BENCH_KEYED_BASELINE=$(BASELINE) \
	$(GO) test -run '^$$' -bench BenchmarkKeyedScale -benchtime 1x -count 1 -timeout 4h -v ./integration | tee bench-keyed.txt)

# The same must-show over a Kafka CDC topic in mode upsert (Debezium JSON,
# keyed by the primary key): ROWS keys produced as snapshot reads, then RATE
# changes/s for MINUTES; the same figures, and the mirror checked row for row
# against the state the generator tracked. Quick run: make bench-keyed-kafka
# ROWS=1000000 MINUTES=1.
bench-keyed-kafka: ## keyed tables at scale over Kafka upserts (issue 17): same variables as bench-keyed; output also in bench-keyed-kafka.txt
	$(call with-kafka-minio,FLOE_BENCH_KEYED_KAFKA=1 FLOE_BENCH_KEYED_ROWS=$(ROWS) FLOE_BENCH_KEYED_MINUTES=$(MINUTES) FLOE_BENCH_KEYED_RATE=$(RATE) FLOE_BENCH_KEYED_BASELINE=$(BASELINE) \
	$(GO) test -run '^$$' -bench '^BenchmarkKeyedScaleKafka$$' -benchtime 1x -count 1 -timeout 4h -v ./integration | tee bench-keyed-kafka.txt)

# with-kafka-minio runs $(1) with MinIO and the local Kafka broker started
# (their FLOE_S3_* and FLOE_KAFKA_BROKERS exported); each is stopped again
# only if this invocation started it.
define with-kafka-minio
	@started=; kstarted=; if ! $(MINIO) status; then started=1; fi; if ! $(KAFKA) status; then kstarted=1; fi; \
	trap 'if [ -n "$$started" ]; then $(MINIO) stop; fi; if [ -n "$$kstarted" ]; then $(KAFKA) stop; fi' EXIT; \
	s3env=$$($(MINIO) start); eval "$$s3env"; \
	kenv=$$($(KAFKA) start); eval "$$kenv"; \
	cenv=$$(integration/kafka-connect.sh env); eval "$$cenv"; \
	echo "+ $(1)"; $(1)
endef

# Issue 15's anchor (not CI): floe ingest beside Apache Iceberg's Kafka
# Connect sink (standalone worker, jars from Maven Central through
# integration/kafka-connect.sh), the same 1M pre-produced 280-byte JSON
# records, each system twice, alternating; ANCHORS_FLAGS adds flags of
# bench/anchors (e.g. -connect-fast-interval 2s).
ANCHORS_FLAGS ?=
bench-anchors: ## Floe vs Iceberg's Kafka Connect sink, 1M records, 10 s and 1 s commits; output also in bench-anchors.txt
	$(call with-kafka-minio,$(GO) run ./bench/anchors -records 1000000 -runs 2 $(ANCHORS_FLAGS) | tee bench-anchors.txt)

bench-anchors-short: ## bench-anchors on 50k records, one run each (about 2 minutes)
	$(call with-kafka-minio,$(GO) run ./bench/anchors -records 50000 -runs 1 $(ANCHORS_FLAGS))

# with-catalogs runs $(1) with PostgreSQL and Iceberg's REST fixture started
# (integration/engines/postgres.sh and rest.sh; FLOE_PG_DSN and FLOE_REST_*
# exported); each is stopped again only if this invocation started it.
define with-catalogs
	@pstarted=; rstarted=; if ! integration/engines/postgres.sh status; then pstarted=1; fi; \
	if ! integration/engines/rest.sh status; then rstarted=1; fi; \
	trap 'if [ -n "$$pstarted" ]; then integration/engines/postgres.sh stop; fi; if [ -n "$$rstarted" ]; then integration/engines/rest.sh stop; fi' EXIT; \
	penv=$$(integration/engines/postgres.sh start); eval "$$penv"; \
	renv=$$(integration/engines/rest.sh start); eval "$$renv"; \
	echo "+ $(1)"; $(1)
endef

# Issue 15's catalog scaling (not CI): commits/s and commit latency with
# 1, 4, 16 writer processes and 1, 100, 1,000 tables on SQLite, PostgreSQL
# and the REST fixture; metadata.json and latency along 10,000 commits to one
# table with expiry on (HISTORY_OFF_COMMITS with expiry off: without expiry
# every commit rewrites all the history, so its run grows quadratically: 10,000
# takes hours on a loaded 2-core machine). CATALOG_FLAGS adds flags of
# bench/catalogbench.
CATALOG_FLAGS ?=
HISTORY_OFF_COMMITS ?= 3000
bench-catalog: ## catalog scaling: writers x tables x catalogs, and 10,000 commits with expiry on (3,000 off); output also in bench-catalog.txt
	$(call with-catalogs,$(GO) build -o bin/catalogbench ./bench/catalogbench && bin/catalogbench -history-off-commits $(HISTORY_OFF_COMMITS) $(CATALOG_FLAGS) | tee bench-catalog.txt)

# (commas inside $(call ...) would split its argument: hence a variable)
CATALOG_SHORT := -writers 1,4 -tables 1,100 -duration 5s -history-commits 300
bench-catalog-short: ## bench-catalog quick: writers 1,4; tables 1,100; 5 s a cell; 300 commits of history
	$(call with-catalogs,$(GO) build -o bin/catalogbench ./bench/catalogbench && bin/catalogbench $(CATALOG_SHORT) $(CATALOG_FLAGS))

soak-upsert: ## issue 12's upsert must-show at full size: 1M Canal and 1M Debezium changes, 10 SIGKILLs each, unpartitioned and partitioned mirrors (outside CI, ~25 min)
	$(call with-servers,FLOE_UPSERT_CHANGES=1000000 FLOE_UPSERT_KILLS=10 $(GO) test -count=1 -timeout 90m -run '^TestUpsertMustShow$$' -v ./integration/)

warehouse-mustshow: ## issue 12's must-show for examples/warehouse at full size: 300k changes, 10 SIGKILLs of floe run, streaming = backfill = DuckDB (outside CI, ~10 min)
	$(call with-servers,integration/engines/setup.sh python && FLOE_WAREHOUSE_CHANGES=300000 FLOE_WAREHOUSE_KILLS=10 FLOE_WAREHOUSE_DUCKDB=required \
	$(GO) test -count=1 -timeout 60m -run '^TestWarehouseMustShow$$' -v ./integration/)

warehouse: ## examples/warehouse: Canal topics from the generator → ODS mirror tables (and the upper layers where built)
	examples/warehouse/run.sh

lint: $(GOLANGCI_LINT) check-rules ## golangci-lint (pinned, cached in ~/.cache/floe/bin) and the alert rules
	$(GOLANGCI_LINT) config verify
	$(GOLANGCI_LINT) run ./...

check-rules: $(PROMTOOL) ## promtool check rules deploy/prometheus-rules.yml (promtool pinned, cached in ~/.cache/floe/bin)
	$(PROMTOOL) check rules deploy/prometheus-rules.yml

$(PROMTOOL):
	@echo "installing promtool $(PROMTOOL_VERSION) into $(CACHE_BIN) (once, a few minutes)"
	@mkdir -p $(CACHE_BIN); tmp=$$(mktemp -d); \
	GOBIN=$$tmp GOFLAGS= $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION); \
	mv $$tmp/promtool $@; rm -rf $$tmp

$(GOLANGCI_LINT):
	@echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(CACHE_BIN) (once)"
	@mkdir -p $(CACHE_BIN); tmp=$$(mktemp -d); \
	GOBIN=$$tmp GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	mv $$tmp/golangci-lint $@; rm -rf $$tmp

clean: ## remove build and demo output
	rm -rf bin/ demo-lake/
