# inference-platform: Crossplane composition functions in Python for LLM serving.
#
#   make render            render examples/claims offline with the real crossplane CLI
#   make test              run the test suite (builds the tools and the venv first)
#   make help              list all targets
#
# Upstream tools (crossplane CLI + core, built from the Go module proxy) and the uv bootstrap
# live in $(TOOLS_DIR), outside the repo; versions are pinned in hack/versions.env.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

include hack/versions.env

TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/inference-platform/tools
export TOOLS_DIR
CROSSPLANE := $(TOOLS_DIR)/bin/crossplane
CROSSPLANE_CORE := $(TOOLS_DIR)/bin/crossplane-core

UV_VERSION := 0.13.9
UV := $(TOOLS_DIR)/uv-venv/bin/uv
UV_STAMP := $(TOOLS_DIR)/uv-venv/.uv-$(UV_VERSION)
VENV := .venv
VENV_STAMP := $(VENV)/.synced
PY := $(VENV)/bin/python

FUNCTIONS := function-inferenceservice function-gpupool function-tokencache
VERSION ?= v$(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml | head -n1)
# Where packages are pushed to / installed from, e.g. registry.example.com/inference-platform.
REGISTRY ?=
CANONICAL_REGISTRY := xpkg.crossplane.io/inference-platform
# provider-kubernetes, the Configuration's dependency, as Crossplane resolves it: set to a mirror's
# path when an ImageConfig rewrites the canonical one, since the runtime ImageConfig that
# `make deploy` applies (deploy/provider-kubernetes/runtime.yaml) matches the rewritten source.
PROVIDER_KUBERNETES_CANONICAL := xpkg.crossplane.io/crossplane-contrib/provider-kubernetes
PROVIDER_KUBERNETES_PACKAGE ?= $(PROVIDER_KUBERNETES_CANONICAL)
GPU_OPERATOR_NAMESPACE := gpu-operator
DEPLOY_TIMEOUT ?= 300s
# Where build/xpkgs write and push reads the packages.
DIST ?= dist
# Repository prefix for the runtime images of `make docker-build`.
IMG ?= $(or $(REGISTRY),inference-platform)

# make render: FILE (one file; default all of examples/claims), FORM (claims|v2),
# OBSERVED / REQUIRED (override examples/{observed,required}/<name>), RENDER_FLAGS (more options).
# FORM also picks the XRDs and Compositions make xpkgs/build package and make install applies.
FORM ?= claims
FILE ?=
OBSERVED ?=
REQUIRED ?=
RENDER_FLAGS ?=
PYTEST_ARGS ?=
# make test-e2e: the XRD forms to run the suite under, each on its own control plane.
E2E_FORMS ?= claims v2
RENDER_ARGS = --form $(FORM) $(if $(OBSERVED),--observed $(OBSERVED)) \
  $(foreach r,$(REQUIRED),--required $(r)) $(RENDER_FLAGS) $(FILE)

##@ Development

.PHONY: help
help: ## Show this help
	@awk 'BEGIN { FS = ":.*## " } \
	  /^##@/ { printf "\n%s\n", substr($$0, 5) } \
	  /^[a-zA-Z0-9_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: FILE FORM OBSERVED REQUIRED RENDER_FLAGS (render), PYTEST_ARGS (test), FUZZ_ARGS (fuzz),"
	@echo "           FUNCTIONS_BENCH_ARGS (bench-functions), SCALE_BENCH_ARGS (bench-scale),"
	@echo "           E2E_FORMS (test-e2e), FORM (xpkgs/build/install: claims|v2),"
	@echo "           REGISTRY VERSION IMG (build/push/deploy/docker-build), TOOLS_DIR=$(TOOLS_DIR)"
	@echo "           PROVIDER_KUBERNETES_PACKAGE DEPLOY_TIMEOUT (deploy)"

.PHONY: tools
tools: ## Build the crossplane CLI, core, llm-d-inference-sim, the GIE endpoint picker and the NVIDIA device plugin into TOOLS_DIR (Go >= 1.26, a C compiler)
	@hack/tools.sh

.PHONY: tools-e2e
tools-e2e: ## Build kube-apiserver, -controller-manager, -scheduler, kubectl, etcd, kwok, registry (slow cold)
	@hack/tools.sh e2e

$(UV_STAMP):
	python3 -m venv "$(TOOLS_DIR)/uv-venv"
	"$(TOOLS_DIR)/uv-venv/bin/pip" install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	touch "$@"

$(VENV_STAMP): uv.lock pyproject.toml $(UV_STAMP)
	UV_PROJECT_ENVIRONMENT=$(VENV) "$(UV)" sync --frozen
	touch "$@"

.PHONY: venv
venv: $(VENV_STAMP) ## Create/refresh .venv from uv.lock (uv sync --frozen)

.PHONY: render
render: tools venv ## Render claims offline (FILE=..., FORM=claims|v2, OBSERVED=, REQUIRED=)
	@$(PY) -m hack.render $(RENDER_ARGS)

.PHONY: run
run: venv ## Serve the three functions (--insecure) on 127.0.0.1:9443-9445 until Ctrl-C
	$(PY) -m hack.render --serve $(if $(DEBUG),--debug)

.PHONY: generate
generate: venv ## Regenerate xrds/, compositions/ and docs/reference/, docs/layout.md from the code
	$(VENV)/bin/inference-xrdgen

.PHONY: check-generated
check-generated: venv ## Fail when xrds/, compositions/ or the generated docs pages are stale
	$(VENV)/bin/inference-xrdgen --check

.PHONY: lint
lint: venv ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy -p hack.render
	$(VENV)/bin/mypy hack/gpu-check.py hack/imports.py tests/gpupool/bench.py tests/gpupool/poolbench.py \
	  tests/gpupool/pooltime.py tests/gpupool/realnodes.py tests/sidecar/bench.py
	$(VENV)/bin/mypy -p hack.e2e
	$(VENV)/bin/mypy -p tests.routing
	$(VENV)/bin/mypy -p tests.serving
	$(VENV)/bin/mypy -p tests.fuzz
	$(VENV)/bin/mypy -p tests.bench_functions
	$(VENV)/bin/mypy -p tests.scale

.PHONY: test
test: tools venv test-deps ## Run the tests (pytest -n auto); the crossplane binaries are on PATH
	PATH="$(TOOLS_DIR)/bin:$$PATH" $(VENV)/bin/pytest -n auto $(PYTEST_ARGS)

# Separate from `make test`: it builds the control plane's tools (~15 min cold, then cached) and
# runs Crossplane against a local kube-apiserver. .ci/run runs both.
.PHONY: test-e2e
test-e2e: tools tools-e2e venv ## End-to-end tests: Crossplane on a local control plane, once per XRD form (E2E_FORMS=)
	E2E=1 E2E_FORMS="$(E2E_FORMS)" PATH="$(TOOLS_DIR)/bin:$$PATH" $(VENV)/bin/pytest tests/e2e tests/routing $(PYTEST_ARGS)

# System packages the tests start as processes. Today: redis-server (the metrics sidecar's
# tests run it on a free port). Installed with apt-get when missing and running as root.
.PHONY: test-deps
test-deps: ## Install redis-server for the sidecar tests (apt-get, as root) when missing
	@command -v redis-server >/dev/null 2>&1 && exit 0; \
	if [[ $$(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then \
	  echo ">> installing redis-server (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	  command -v redis-server >/dev/null 2>&1 || { echo "error: apt-get installed no redis-server" >&2; exit 1; }; \
	else \
	  echo "error: redis-server is not installed; the sidecar tests need it. Install it" \
	    "(e.g. sudo apt-get install redis-server, brew install redis) or re-run as root on Debian." >&2; \
	  exit 1; \
	fi

.PHONY: sidecar-proto
sidecar-proto: venv ## Regenerate sidecar/podresources/api_pb2.py(i) from api.proto (grpcio-tools)
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. sidecar/podresources/api.proto

.PHONY: bench-sidecar
bench-sidecar: tools venv test-deps ## Sidecar scrape latency + RSS with Redis and the vLLM simulator; not part of test
	PATH="$(TOOLS_DIR)/bin:$$PATH" $(PY) -m tests.sidecar.bench $(SIDECAR_BENCH_ARGS)

.PHONY: bench-pool
bench-pool: venv ## GPUPool at 10-5,000 realistic Nodes: request/response/status bytes, CPU in process and served, RSS (POOL_BENCH_ARGS=); not part of test
	$(PY) -m tests.gpupool.poolbench $(POOL_BENCH_ARGS)

.PHONY: bench-serve
bench-serve: venv ## Small calls answered while a large GPUPool composes: our server vs the SDK's; not part of test
	$(PY) -m tests.serving.bench $(SERVE_BENCH_ARGS)

.PHONY: bench-convert
bench-convert: tools venv ## Struct<->dict options, per-call CPU in process and served vs a baseline ref, serving overhead; not part of test
	PATH="$(TOOLS_DIR)/bin:$$PATH" TOOLS_DIR="$(TOOLS_DIR)" $(PY) -m tests.serving.convert_bench $(CONVERT_BENCH_ARGS)

# Real endpoint picker (epp) + llm-d-inference-sim replicas on the e2e control plane; ~5 min.
.PHONY: bench-cache
bench-cache: tools tools-e2e venv ## Cache-aware routing benchmark (N=1,4,8; writes docs/routing-benchmark.md); not part of test
	PATH="$(TOOLS_DIR)/bin:$$PATH" $(PY) -m tests.routing.bench \
	  --command "make bench-cache$(if $(CACHE_BENCH_ARGS), CACHE_BENCH_ARGS='$(CACHE_BENCH_ARGS)')" $(CACHE_BENCH_ARGS)

# Hundreds of InferenceServices through the real Crossplane core on the e2e control plane, the
# function response cache off and on (docs/performance.md); ~5 min per size and setting.
# SCALE_BENCH_ARGS: --sizes 100,250,500 --cache off,on --form v2 --steady 90 --timeout 600 --out DIR
.PHONY: bench-scale
bench-scale: tools tools-e2e venv ## Claims Ready, function and core CPU/RSS, a pool change at 100/250/500 services; not part of test
	PATH="$(TOOLS_DIR)/bin:$$PATH" $(PY) -m tests.scale.bench $(SCALE_BENCH_ARGS)

# The property tests in tests/fuzz run a small derandomized budget in `make test`; this is the
# long run (issue 14): FUZZ_ARGS=--requests N --seed S --kind GPUPool --out DIR.
.PHONY: fuzz
fuzz: venv ## Fuzz the three functions through RunFunction (10,000 requests each); counts per class
	$(PY) -m tests.fuzz $(FUZZ_ARGS)

# Our three functions against function-patch-and-transform (the Go reference), served, driven by
# ghz with the requests `crossplane composition render` sends (captured); writes its section of
# docs/performance.md. Pins servers and ghz to one core each: run it on a quiet machine.
.PHONY: bench-functions
bench-functions: tools venv ## Served functions vs function-patch-and-transform: latency, CPU/call, calls/s, RSS; not part of test
	@hack/tools.sh bench
	PATH="$(TOOLS_DIR)/bin:$$PATH" $(PY) -m tests.bench_functions $(FUNCTIONS_BENCH_ARGS)

.PHONY: bench
bench: venv ## MIG planner benchmark (GPUs vs exact optimum, 1,000-node pool); not part of test
	UV_PROJECT_ENVIRONMENT=$(VENV) "$(UV)" run --frozen --no-sync --with 'pulp==3.3.2' \
	  python -m tests.gpupool.bench $(BENCH_ARGS)

##@ Packaging

.PHONY: build
build: tools venv xpkgs ## Wheel + function and configuration .xpkg files into dist/
	"$(UV)" build --wheel --out-dir $(DIST)
	@ls -l $(DIST)

# The .xpkg files alone (no wheel); the e2e harness builds these into a temp DIST.
.PHONY: xpkgs
xpkgs: tools ## Function and configuration .xpkg files into DIST (default dist/); FORM=claims|v2 XRDs; REGISTRY rewrites dependencies
	mkdir -p $(DIST)
	rm -f $(DIST)/*.whl $(DIST)/*.xpkg
	for fn in $(FUNCTIONS); do \
	  embed=(); \
	  if [[ -f dist/runtime-$$fn.tar ]]; then \
	    embed=(--embed-runtime-image-tarball="dist/runtime-$$fn.tar"); \
	  else \
	    echo "note: dist/runtime-$$fn.tar missing (make docker-build): $$fn.xpkg has no runtime image"; \
	  fi; \
	  "$(CROSSPLANE)" xpkg build --package-root="package/$$fn" --package-file="$(DIST)/$$fn.xpkg" \
	    --examples-root="package/$$fn/examples" "$${embed[@]}"; \
	done
	root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; \
	sed 's#$(CANONICAL_REGISTRY)/#$(or $(REGISTRY),$(CANONICAL_REGISTRY))/#' \
	  package/configuration/crossplane.yaml > "$$root/crossplane.yaml"; \
	cp -r xrds/$(FORM) "$$root/xrds"; cp -r compositions/$(FORM) "$$root/compositions"; \
	"$(CROSSPLANE)" xpkg build --package-root="$$root" --package-file=$(DIST)/configuration.xpkg \
	  --examples-root=examples/claims

.PHONY: docker-build
docker-build: ## Build the function images (IMG=repo prefix) and save them to dist/runtime-*.tar
	@command -v docker >/dev/null 2>&1 || { echo "error: docker is not installed" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "error: cannot reach a Docker daemon (docker info failed); start Docker or set DOCKER_HOST" >&2; exit 1; }
	mkdir -p dist
	for fn in $(FUNCTIONS); do \
	  docker build --target "$$fn" -t "$(IMG)/$$fn:$(VERSION)" . ; \
	  docker save -o "dist/runtime-$$fn.tar" "$(IMG)/$$fn:$(VERSION)"; \
	done

.PHONY: sidecar-image
sidecar-image: ## Build the metrics sidecar image <IMG>/inference-sidecar:<VERSION> (--target sidecar)
	@command -v docker >/dev/null 2>&1 || { echo "error: docker is not installed" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "error: cannot reach a Docker daemon (docker info failed); start Docker or set DOCKER_HOST" >&2; exit 1; }
	docker build --target sidecar -t "$(IMG)/inference-sidecar:$(VERSION)" .

.PHONY: push
push: tools require-registry ## Push $(DIST)/*.xpkg to $(REGISTRY)/<name>:$(VERSION)
	for pkg in $(FUNCTIONS) configuration; do \
	  [[ -f $(DIST)/$$pkg.xpkg ]] || { echo "error: $(DIST)/$$pkg.xpkg missing; run make docker-build build REGISTRY=$(REGISTRY)" >&2; exit 1; }; \
	  "$(CROSSPLANE)" xpkg push --package-files="$(DIST)/$$pkg.xpkg" "$(REGISTRY)/$$pkg:$(VERSION)"; \
	done

##@ Cluster (current kubectl context)

.PHONY: install
install: require-cluster ## kubectl apply the XRDs and Compositions (FORM=claims|v2)
	kubectl apply -f xrds/$(FORM)
	kubectl wait --for=condition=Established --timeout=120s -f xrds/$(FORM)
	kubectl apply -f compositions/$(FORM)

.PHONY: deploy
deploy: tools require-registry require-crossplane ## Install provider-kubernetes' runtime config and RBAC (deploy/), the functions and the Configuration from $(REGISTRY)
	@kubectl get namespace $(GPU_OPERATOR_NAMESPACE) >/dev/null 2>&1 || { \
	  echo "error: namespace $(GPU_OPERATOR_NAMESPACE) not found: install the GPU Operator first (README, Install on a cluster)" >&2; exit 1; }
	sed 's#$(PROVIDER_KUBERNETES_CANONICAL)#$(PROVIDER_KUBERNETES_PACKAGE)#' \
	  deploy/provider-kubernetes/runtime.yaml | kubectl apply -f -
	kubectl apply -f deploy/provider-kubernetes/rbac.yaml
	for fn in $(FUNCTIONS); do \
	  "$(CROSSPLANE)" xpkg install function "$(REGISTRY)/$$fn:$(VERSION)" "$$fn"; \
	done
	"$(CROSSPLANE)" xpkg install configuration "$(REGISTRY)/configuration:$(VERSION)" inference-platform
	# provider-kubernetes comes as the Configuration's dependency; its ProviderConfig CRD first.
	kubectl wait --for=create --timeout=$(DEPLOY_TIMEOUT) crd/providerconfigs.kubernetes.crossplane.io
	kubectl wait --for=condition=Established --timeout=$(DEPLOY_TIMEOUT) crd/providerconfigs.kubernetes.crossplane.io
	kubectl apply -f deploy/provider-kubernetes/providerconfig.yaml

.PHONY: deploy-samples
deploy-samples: require-cluster ## kubectl apply -f examples/claims
	kubectl apply -f examples/claims

.PHONY: require-cluster
require-cluster:
	@command -v kubectl >/dev/null 2>&1 || { echo "error: kubectl is not installed" >&2; exit 1; }
	@kubectl cluster-info --request-timeout=10s >/dev/null 2>&1 || { \
	  echo "error: no Kubernetes cluster reachable (kubectl context: $$(kubectl config current-context 2>/dev/null || echo none)); check KUBECONFIG" >&2; exit 1; }

.PHONY: require-crossplane
require-crossplane: require-cluster
	@kubectl get crd functions.pkg.crossplane.io >/dev/null 2>&1 || { \
	  echo "error: Crossplane is not installed in the cluster (no functions.pkg.crossplane.io CRD)" >&2; exit 1; }

.PHONY: require-registry
require-registry:
	@[[ -n "$(REGISTRY)" ]] || { echo "error: set REGISTRY, e.g. make $(MAKECMDGOALS) REGISTRY=$(CANONICAL_REGISTRY)" >&2; exit 1; }

##@ Housekeeping

.PHONY: clean
clean: ## Remove dist/ and caches (keeps .venv and TOOLS_DIR)
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## Also remove .venv (TOOLS_DIR stays; rm -rf it by hand)
	rm -rf $(VENV)
