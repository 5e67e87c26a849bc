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

.PHONY: help demo build test test-short test-integration soak bench lint clean

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

lint: $(GOLANGCI_LINT) ## golangci-lint (pinned, cached in ~/.cache/floe/bin)
	$(GOLANGCI_LINT) config verify
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(CACHE_BIN) (once)"
	@mkdir -p $(CACHE_BIN); tmp=$$(mktemp -d); \
	GOBIN=$$tmp GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	mv $$tmp/golangci-lint $@; rm -rf $$tmp

clean: ## remove build and demo output
	rm -rf bin/ demo-lake/
