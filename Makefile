# Developer entry points.
#   make control-plane   build kube-apiserver, kube-controller-manager, kubectl and etcd (cached)
#   make go-tools        build helm, actionlint, promrules and fetch the Prometheus Operator CRDs the tests use (cached)
#   make cluster-up      start a local control plane in .local/ (idempotent)
#   make cluster-down    stop it
#   make install         kubectl apply --server-side -f crds/ against $KUBECONFIG
#   make run             with KUBECONFIG: run the operator there; without: a local demo with a WAHA emulator
#   make test            unit and integration tests (the integration project starts its own control plane)
#   make browser         install headless Chromium and zbarimg (apt-get) for the qr --web browser test
#   make image           build the operator image with docker, podman or buildah (IMAGE=..., default below)
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Node 24 (hack/node.sh installs it into the cache on first use, then only prints its bin dir).
NODE_BIN := $(shell hack/node.sh)
ifeq ($(NODE_BIN),)
$(warning hack/node.sh failed; using the node on PATH)
else
export PATH := $(NODE_BIN):$(PATH)
endif

CLUSTER_DIR ?= .local
BUILD_CONTROL_PLANE := hack/control-plane/build.sh
BUILD_GITOPS_HEALTH := hack/gitops-health/build.sh
CLUSTER := node hack/control-plane/cluster.ts

GO_TOOLS := helm actionlint promrules prometheus-operator-crds
VERSION := $(shell node -p 'require("./package.json").version')
IMAGE ?= ghcr.io/wa-operator/wa-operator:$(VERSION)

.PHONY: help control-plane gitops-health browser go-tools cluster-up cluster-down cluster-status install node_modules test run image

help:
	@sed -n '2,10p' Makefile | sed 's/^# \{0,1\}//'

# Builds (or finds in the cache) the control-plane binaries; prints their directory.
control-plane:
	@$(BUILD_CONTROL_PLANE)

# Builds (or finds in the cache) the kstatus + Argo CD Lua helper the GitOps health test runs; prints its path.
gitops-health:
	@$(BUILD_GITOPS_HEALTH)

# Debian's chromium and zbar-tools, installed with apt-get when missing (CI runs as root).
browser:
	@hack/browser.sh >/dev/null

# What the chart, workflow and monitoring tests run: helm, actionlint and promrules built from their Go
# modules, and the Prometheus Operator's CRDs (hack/go-tools/build.sh; cached).
go-tools:
	@for tool in $(GO_TOOLS); do hack/go-tools/build.sh $$tool >/dev/null; done

cluster-up: control-plane
	@bin="$$($(BUILD_CONTROL_PLANE))"; \
	$(CLUSTER) up --dir $(CLUSTER_DIR) --bin-dir "$$bin" >/dev/null; \
	echo "export KUBECONFIG=$(CURDIR)/$(CLUSTER_DIR)/kubeconfig"; \
	echo "export PATH=$$bin:\$$PATH  # kubectl $$("$$bin/kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -1)"

cluster-down:
	@$(CLUSTER) down --dir $(CLUSTER_DIR)

cluster-status:
	@$(CLUSTER) status --dir $(CLUSTER_DIR)

# Prefers the built kubectl; builds it only when there is no kubectl on PATH at all.
install:
	@if bin="$$($(BUILD_CONTROL_PLANE) --check)"; then export PATH="$$bin:$$PATH"; \
	elif ! command -v kubectl >/dev/null; then export PATH="$$($(BUILD_CONTROL_PLANE)):$$PATH"; fi; \
	echo "kubectl apply --server-side -f crds/ (KUBECONFIG=$${KUBECONFIG:-~/.kube/config}, $$(command -v kubectl))"; \
	kubectl apply --server-side -f crds/

node_modules: node_modules/.package-lock.json

node_modules/.package-lock.json: package-lock.json package.json
	npm ci
	@touch $@

test: node_modules control-plane gitops-health browser go-tools
	@mkdir -p .local; bin="$$($(BUILD_CONTROL_PLANE))"; health="$$($(BUILD_GITOPS_HEALTH))"; \
	status=0; PATH="$$bin:$$PATH" WA_CONTROL_PLANE_BIN="$$bin" WA_GITOPS_HEALTH_BIN="$$health" npx vitest run --reporter=default --reporter=json \
	  --outputFile.json=.local/vitest-report.json || status=$$?; \
	node scripts/test-summary.ts .local/vitest-report.json && exit $$status

run: node_modules control-plane
	@bin="$$($(BUILD_CONTROL_PLANE))"; PATH="$$bin:$$PATH" node hack/run.ts

# The image of the Dockerfile, labelled with this version (org.opencontainers.image.version).
# Needs docker, podman or buildah; push it yourself (`docker push $(IMAGE)`).
image:
	@engine="$$(for e in docker podman buildah; do command -v $$e >/dev/null && { echo $$e; break; }; done)"; \
	if [ -z "$$engine" ]; then echo "make image: no container engine (docker, podman or buildah) on PATH; nothing built" >&2; exit 1; fi; \
	if [ "$$engine" = docker ] && ! docker info >/dev/null 2>&1; then echo "make image: docker is installed but its daemon does not answer (docker info failed); nothing built" >&2; exit 1; fi; \
	if [ "$$engine" = buildah ]; then build="buildah bud"; else build="$$engine build"; fi; \
	set -x; \
	$$build --build-arg VERSION=$(VERSION) --build-arg REVISION="$$(git rev-parse HEAD 2>/dev/null || echo unknown)" -t $(IMAGE) .
