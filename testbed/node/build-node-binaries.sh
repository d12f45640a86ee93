#!/usr/bin/env bash
# Builds kubelet and kube-proxy from the Go module proxy, the same Kubernetes version and the same wrapper-module
# technique as testbed/controlplane/build-binaries.sh (k8s.io/kubernetes replaces its staging
# modules, so `go install` refuses it). Cached by version; prints the directory on its last line.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
CACHE_ROOT="${SIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekoia-intel-sync}"
BIN_DIR="$CACHE_ROOT/node/kubelet-$K8S_VERSION"  # kubelet and kube-proxy
WORK_DIR="$CACHE_ROOT/node/build/kubelet-$K8S_VERSION"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
export GOPATH="${GOPATH:-$(go env GOPATH)}"
export GOMAXPROCS="${GOMAXPROCS:-2}"

log() { printf '[build-node-binaries] %s\n' "$*" >&2; }

have_all() { [ -x "$BIN_DIR/kubelet" ] && [ -x "$BIN_DIR/kube-proxy" ]; }
if have_all; then log "cached: $BIN_DIR"; echo "$BIN_DIR"; exit 0; fi
command -v go >/dev/null || { log "go is not installed (need Go >= 1.25)"; exit 1; }
mkdir -p "$BIN_DIR" "$WORK_DIR"
exec 9>"$CACHE_ROOT/node/.build-node-binaries.lock"
if ! flock -n 9; then log "another build is running; waiting for it"; flock 9; fi
if have_all; then log "cached: $BIN_DIR"; echo "$BIN_DIR"; exit 0; fi
start=$(date +%s)

gomod=$(cd "$WORK_DIR" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
staging="v0.${K8S_VERSION#v1.}"
{
  echo "module sis.local/kubeletbuild"
  echo
  grep -E '^go ' "$gomod"
  grep -E '^godebug ' "$gomod" || true
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  grep -E '=> \./staging/src/' "$gomod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > "$WORK_DIR/go.mod"
cat > "$WORK_DIR/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
(cd "$WORK_DIR" && go mod tidy -e >/dev/null 2>&1 || true)
(cd "$WORK_DIR" && go mod download)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
for b in kubelet kube-proxy; do
  [ -x "$BIN_DIR/$b" ] && continue
  log "building $b $K8S_VERSION"
  (cd "$WORK_DIR" && go build -trimpath -tags tools -ldflags "$ldflags" -o "$BIN_DIR/$b.tmp" "k8s.io/kubernetes/cmd/$b")
  mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
done
log "built in $(( $(date +%s) - start ))s: $BIN_DIR"
echo "$BIN_DIR"
