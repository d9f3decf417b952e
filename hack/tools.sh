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

build_sim() {
  local out="$BIN/llm-d-inference-sim-$LLM_D_INFERENCE_SIM_VERSION"
  if [[ ! -x $out ]]; then
    echo ">> building llm-d-inference-sim $LLM_D_INFERENCE_SIM_VERSION (github.com/llm-d/llm-d-inference-sim)"
    local mod; mod=$(mktemp -d)
    # Pure Go (CGO off) since v0.8.0; a throwaway main module pins the release.
    ( cd "$mod" && go mod init local/inferencesim >/dev/null 2>&1 \
      && go get "github.com/llm-d/llm-d-inference-sim@$LLM_D_INFERENCE_SIM_VERSION" \
      && go build -trimpath -ldflags "-s -w" \
           -o "$out.tmp" github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim ) && mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  link llm-d-inference-sim "$out"
}

case "${1:-all}" in
  cli) build_cli ;;
  core) build_core ;;
  sim) build_sim ;;
  all) build_cli; build_core; build_sim ;;
  *) echo "usage: $0 [all|cli|core|sim|dir]" >&2; exit 2 ;;
esac
