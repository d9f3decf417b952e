#!/usr/bin/env bash
# Build the pinned upstream tools from the Go module proxy into a per-user cache.
# Idempotent: a tool whose versioned binary exists is not rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
TOOLS_DIR=${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-platform/tools}
BIN="$TOOLS_DIR/bin"
mkdir -p "$BIN"

[[ ${1:-} == dir ]] && { echo "$TOOLS_DIR"; exit 0; }

GO_MIN=1.26  # the crossplane CLI and core modules declare go 1.26 (llm-d-inference-sim: 1.25.7)
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is not installed. Install Go >= $GO_MIN (https://go.dev/doc/install," \
    "or your distribution's golang package) and re-run 'make tools'." >&2
  exit 1
fi
go_version=$(go env GOVERSION); go_version=${go_version#go}
if [[ $(printf '%s\n' "$GO_MIN" "$go_version" | sort -V | head -n1) != "$GO_MIN" ]]; then
  echo "error: Go $go_version is too old; install Go >= $GO_MIN and re-run 'make tools'." >&2
  exit 1
fi

VERSION_LDFLAG=github.com/crossplane/crossplane-runtime/v2/pkg/version.version
export GOFLAGS=-mod=mod CGO_ENABLED=0

# link NAME VERSIONED: stable name pointing at the versioned binary.
link() { ln -sf "$(basename "$2")" "$BIN/$1"; }

build_cli() {
  local out="$BIN/crossplane-cli-$CROSSPLANE_CLI_VERSION"
  if [[ ! -x $out ]]; then
    echo ">> building crossplane CLI $CROSSPLANE_CLI_VERSION (github.com/crossplane/cli/v2)"
    local mod; mod=$(mktemp -d)
    ( cd "$mod" && go mod init local/xpcli >/dev/null 2>&1 \
      && go get "github.com/crossplane/cli/v2@$CROSSPLANE_CLI_VERSION" \
      && go build -trimpath -ldflags "-s -w -X $VERSION_LDFLAG=$CROSSPLANE_CLI_VERSION" \
           -o "$out.tmp" github.com/crossplane/cli/v2/cmd/crossplane ) && mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  link crossplane "$out"
}

build_core() {
  local out="$BIN/crossplane-core-$CROSSPLANE_CORE_VERSION"
  if [[ ! -x $out ]]; then
    echo ">> building Crossplane core $CROSSPLANE_CORE_VERSION (wrapper module, apis $CROSSPLANE_APIS_VERSION)"
    local mod; mod=$(mktemp -d)
    # Core's own go.mod replaces apis/v2 with a local directory, so `go install` refuses it;
    # a wrapper main module pins the same apis release instead.
    ( cd "$mod" && go mod init local/xpcore >/dev/null 2>&1 \
      && go mod edit -require="github.com/crossplane/crossplane/v2@$CROSSPLANE_CORE_VERSION" \
      && go mod edit -replace="github.com/crossplane/crossplane/apis/v2=github.com/crossplane/crossplane/apis/v2@$CROSSPLANE_APIS_VERSION" \
      && go get "github.com/crossplane/crossplane/v2/cmd/crossplane@$CROSSPLANE_CORE_VERSION" \
      && go build -trimpath -ldflags "-s -w -X $VERSION_LDFLAG=$CROSSPLANE_CORE_VERSION" \
           -o "$out.tmp" github.com/crossplane/crossplane/v2/cmd/crossplane ) && mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  link crossplane-core "$out"
  # CRDs of the core release, for offline `crossplane resource validate` (its image cache layout).
  local crds="$TOOLS_DIR/xpkg-cache/xpkg.crossplane.io/crossplane/crossplane@$CROSSPLANE_CORE_VERSION"
  if [[ ! -d $crds ]]; then
    local src; src=$(go mod download -json "github.com/crossplane/crossplane/v2@$CROSSPLANE_CORE_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    mkdir -p "$crds.tmp" && cp "$src"/cluster/crds/*.yaml "$crds.tmp"/ && chmod -R u+w "$crds.tmp" && mv "$crds.tmp" "$crds"
  fi
}

# Pure Go (CGO off) since v0.8.0.
build_sim() {
  go_tool llm-d-inference-sim github.com/llm-d/llm-d-inference-sim "$LLM_D_INFERENCE_SIM_VERSION" \
    github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim
}

# --- e2e group: the control plane of tests/e2e (make tools-e2e) ---

# timed LABEL CMD...: run CMD and report its wall time (cold builds are slow on 2 cores).
timed() {
  local label=$1 start=$SECONDS; shift
  "$@"
  echo ">> $label built in $((SECONDS - start)) s"
}

# Kubernetes' main module requires its staging modules (k8s.io/api, ...) at v0.0.0 with local
# replaces that do not apply to a dependency. The wrapper module replaces each of them with its
# published release v0.<minor>.<patch>, generated from the real go.mod so none is missed.
k8s_module() {
  local mod=$1 gomod staging
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  staging="v0.${KUBERNETES_VERSION#v1.}"
  ( cd "$mod" && go mod init local/k8sbins >/dev/null 2>&1 \
    && go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION" \
    && for m in $(awk '$2 == "v0.0.0" { print $1 }' "$gomod"); do
         go mod edit -replace="$m=$m@$staging"
       done \
    && go get -tool k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
         k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl )
}

build_kubernetes() {
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl) missing=() c
  for c in "${cmds[@]}"; do [[ -x $BIN/$c-$KUBERNETES_VERSION ]] || missing+=("$c"); done
  if (( ${#missing[@]} )); then
    echo ">> building ${missing[*]} $KUBERNETES_VERSION (wrapper module over k8s.io/kubernetes)"
    local mod; mod=$(mktemp -d)
    k8s_module "$mod"
    # One binary at a time: parallel links of these binaries exhaust small machines.
    for c in "${missing[@]}"; do
      local out="$BIN/$c-$KUBERNETES_VERSION"
      ( cd "$mod" && timed "$c" go build -trimpath \
          -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" \
          -o "$out.tmp" "k8s.io/kubernetes/cmd/$c" ) && mv "$out.tmp" "$out"
    done
    rm -rf "$mod"
  fi
  for c in "${cmds[@]}"; do link "$c" "$BIN/$c-$KUBERNETES_VERSION"; done
}

build_etcd() {
  local out="$BIN/etcd-$ETCD_VERSION"
  if [[ ! -x $out ]]; then
    echo ">> building etcd $ETCD_VERSION (wrapper main over go.etcd.io/etcd/server/v3/etcdmain)"
    local mod; mod=$(mktemp -d)
    # etcd's own main module (go.etcd.io/etcd/v3) replaces its submodules with local paths;
    # a wrapper main calling the server's etcdmain.Main pins the published server release.
    cat > "$mod/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    ( cd "$mod" && go mod init local/etcd >/dev/null 2>&1 \
      && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy \
      && timed etcd go build -trimpath -ldflags "-s -w" -o "$out.tmp" . ) && mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  link etcd "$out"
}

# go_tool NAME MODULE VERSION PACKAGE [LDFLAGS...]: build PACKAGE of MODULE@VERSION in a
# throwaway main module, with -s -w and any further link flags (e.g. -X version stamps).
go_tool() {
  local name=$1 module=$2 version=$3 pkg=$4 out="$BIN/$1-$3"
  local ldflags="-s -w ${*:5}"
  if [[ ! -x $out ]]; then
    echo ">> building $name $version ($pkg)"
    local mod; mod=$(mktemp -d)
    ( cd "$mod" && go mod init "local/$name" >/dev/null 2>&1 \
      && go get "$module@$version" \
      && timed "$name" go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg" ) && mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  link "$name" "$out"
}

# The kwok controller has no built-in behaviour: kwokctl passes it Stage objects. Keep the
# release's "fast" node and pod stages (+ node heartbeat) beside the binary for hack/e2e.
kwok_stages() {
  local dir="$TOOLS_DIR/kwok-stages-$KWOK_VERSION"
  [[ -d $dir ]] && return 0
  local src; src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$dir.tmp"
  cp "$src"/kustomize/stage/node/fast/node-*.yaml "$src"/kustomize/stage/node/heartbeat/node-*.yaml \
    "$src"/kustomize/stage/pod/fast/pod-*.yaml "$dir.tmp"/
  chmod -R u+w "$dir.tmp" && mv "$dir.tmp" "$dir"
}

# crds NAME MODULE VERSION FILE...: the CRD manifests of a third-party kind, straight from its
# module source, into $TOOLS_DIR/crds-NAME-VERSION/ (hack/e2e applies every file there).
crds() {
  local name=$1 module=$2 version=$3; shift 3
  local dir="$TOOLS_DIR/crds-$name-$version"
  [[ -d $dir ]] && return 0
  local src; src=$(go mod download -json "$module@$version" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$dir.tmp"
  for f in "$@"; do cp "$src/$f" "$dir.tmp"/; done
  chmod -R u+w "$dir.tmp" && mv "$dir.tmp" "$dir"
}

# The real provider-kubernetes controller manager, run out of cluster by hack/e2e/provider.py.
# Its module has no local replaces, so a throwaway main module builds the release as is.
# Link flags only: its version, and controller-runtime's metrics server off ("0", as
# controller-runtime's tests do): no provider flag moves it off :8080 on all interfaces.
build_provider_kubernetes() {
  local module=github.com/crossplane-contrib/provider-kubernetes
  go_tool provider-kubernetes "$module" "$PROVIDER_KUBERNETES_VERSION" "$module/cmd/provider" \
    -X "$module/internal/version.Version=$PROVIDER_KUBERNETES_VERSION" \
    -X sigs.k8s.io/controller-runtime/pkg/metrics/server.DefaultBindAddress=0
}

# Gateway API Inference Extension: the endpoint picker (EPP) and the CRDs of prefix-aware routing.
# The EPP's main module has no local replaces, so go_tool builds cmd/epp as released; the link
# flags stamp the version as the release Dockerfile does (version.BuildRef; no commit in a zip).
# CRDs: InferencePool (inference.networking.k8s.io, what we compose) and the two kinds of the
# x-k8s.io group the EPP watches when discovery finds them (InferenceObjective,
# InferenceModelRewrite; pkg/epp/server/controller_config.go). Gateway API: the standard-channel
# GatewayClass, Gateway and HTTPRoute (an HTTPRoute's backendRef names the InferencePool).
build_gie() {
  local module=sigs.k8s.io/gateway-api-inference-extension
  go_tool epp "$module" "$GIE_VERSION" "$module/cmd/epp" -X "$module/version.BuildRef=$GIE_VERSION"
  crds gie "$module" "$GIE_VERSION" \
    config/crd/bases/inference.networking.k8s.io_inferencepools.yaml \
    config/crd/bases/inference.networking.x-k8s.io_inferenceobjectives.yaml \
    config/crd/bases/inference.networking.x-k8s.io_inferencemodelrewrites.yaml
  crds gateway-api sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION" \
    config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml \
    config/crd/standard/gateway.networking.k8s.io_gateways.yaml \
    config/crd/standard/gateway.networking.k8s.io_httproutes.yaml
}

# The NVIDIA device plugin as released, for tests/cli/test_device_plugin_config.py. go-nvml (cgo,
# dlopen) has no CGO_ENABLED=0 build, so this one tool needs a C compiler; nothing links NVML.
# The plugin's flag validation asks whether libnvidia-ml.so.1 can be dlopened (the GPU Operator's
# default CDI device-list strategy requires it), so a stand-in library that loads and answers
# nvmlInit with NVML_ERROR_DRIVER_NOT_LOADED (9) goes beside it: a GPU node whose driver root has
# NVML, minus the GPUs. The plugin then validates, and stops at its first NVML call.
build_device_plugin() {
  local module=github.com/NVIDIA/k8s-device-plugin
  if ! command -v "${CC:-cc}" >/dev/null 2>&1; then
    echo "error: the NVIDIA device plugin needs cgo: install a C compiler (gcc or clang) and" \
      "re-run 'make tools'." >&2
    exit 1
  fi
  CGO_ENABLED=1 go_tool nvidia-device-plugin "$module" "$K8S_DEVICE_PLUGIN_VERSION" \
    "$module/cmd/nvidia-device-plugin" -X "$module/internal/info.version=$K8S_DEVICE_PLUGIN_VERSION"
  local root="$TOOLS_DIR/nvml-driver-not-loaded-v1"
  [[ -f $root/usr/lib64/libnvidia-ml.so.1 ]] && return 0
  local src; src=$(mktemp -d)
  cat > "$src/nvml.c" <<'C'
/* Stand-in libnvidia-ml.so.1: loads, and reports that the NVIDIA driver is not loaded. */
int nvmlInit_v2(void) { return 9; }
int nvmlInit(void) { return 9; }
int nvmlInitWithFlags(unsigned int flags) { (void)flags; return 9; }
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int result) { (void)result; return "Driver Not Loaded"; }
C
  mkdir -p "$root.tmp/usr/lib64" \
    && "${CC:-cc}" -shared -fPIC -o "$root.tmp/usr/lib64/libnvidia-ml.so.1" "$src/nvml.c" \
    && rm -rf "$root" && mv "$root.tmp" "$root"
  rm -rf "$src"
}

# provider-kubernetes' package source (package/crossplane.yaml and package/crds/) as released: the
# e2e suite builds it into a package (no runtime image: nothing runs containers there) and pushes
# it to its local registry, from which Crossplane resolves our Configuration's dependency.
provider_package_source() {
  local module=github.com/crossplane-contrib/provider-kubernetes
  local dir="$TOOLS_DIR/xpkg-src-provider-kubernetes-$PROVIDER_KUBERNETES_VERSION"
  [[ -f $dir/crossplane.yaml && -d $dir/crds ]] && return 0
  local src; src=$(go mod download -json "$module@$PROVIDER_KUBERNETES_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  cp "$src/package/crossplane.yaml" "$dir.tmp"/ && cp -r "$src/package/crds" "$dir.tmp"/
  chmod -R u+w "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

build_e2e() {
  crds keda github.com/kedacore/keda/v2 "$KEDA_VERSION" \
    config/crd/bases/keda.sh_scaledobjects.yaml
  crds prometheus-operator github.com/prometheus-operator/prometheus-operator \
    "$PROMETHEUS_OPERATOR_VERSION" example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml
  build_kubernetes
  build_etcd
  go_tool kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
  kwok_stages
  go_tool registry github.com/google/go-containerregistry "$GO_CONTAINERREGISTRY_VERSION" \
    github.com/google/go-containerregistry/cmd/registry
  build_provider_kubernetes
  provider_package_source
}

# --- bench group: the Go reference function and the load generator (make bench-functions) ---

# crossplane-contrib/function-patch-and-transform, the Go reference of tests/bench_functions: its
# module has no local replaces, so go_tool builds the release's main package as is.
build_bench() {
  go_tool function-patch-and-transform github.com/crossplane-contrib/function-patch-and-transform \
    "$FUNCTION_PATCH_AND_TRANSFORM_VERSION" github.com/crossplane-contrib/function-patch-and-transform
  go_tool ghz github.com/bojand/ghz "$GHZ_VERSION" github.com/bojand/ghz/cmd/ghz \
    -X main.version="$GHZ_VERSION"
}

case "${1:-all}" in
  cli) build_cli ;;
  core) build_core ;;
  sim) build_sim ;;
  # The endpoint picker and the device plugin are in `all`: make test loads rendered configs
  # with them.
  all) build_cli; build_core; build_sim; build_gie; build_device_plugin ;;
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  e2e) build_e2e ;;
  bench) build_bench ;;
  provider-kubernetes) build_provider_kubernetes; provider_package_source ;;
  gie) build_gie ;;
  device-plugin) build_device_plugin ;;
  *) echo "usage: $0 [all|cli|core|sim|dir|e2e|bench|kubernetes|etcd|provider-kubernetes|gie|device-plugin]" >&2; exit 2 ;;
esac
