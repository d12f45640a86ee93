#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# etcd, helm, kwok) from the Go module proxy into a cache directory keyed by version.
# Prints the directory that holds the binaries on its last line. A second run reuses the cache.
#
# Why wrapper modules: k8s.io/kubernetes and etcd's server module carry `replace` directives, so
# `go install pkg@version` refuses them; a throw-away module that requires them (and, for Kubernetes,
# re-points every staging module at its published v0.X.Y) builds the same sources.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"
HELM_VERSION="${HELM_VERSION:-v3.19.5}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"

CACHE_ROOT="${SIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekoia-intel-sync}"
BIN_DIR="$CACHE_ROOT/controlplane/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_kwok-${KWOK_VERSION}"
WORK_DIR="$CACHE_ROOT/controlplane/build"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
export GOPATH="${GOPATH:-$(go env GOPATH)}"
# Two cores and a few GB: one package at a time per binary keeps peak memory sane.
export GOMAXPROCS="${GOMAXPROCS:-2}"

log() { printf '[build-binaries] %s\n' "$*" >&2; }

have_all() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd helm kwok; do
    [ -x "$BIN_DIR/$b" ] || return 1
  done
}

exit_if_cached() {
  if have_all; then
    log "cached: $BIN_DIR"
    echo "$BIN_DIR"
    exit 0
  fi
}

exit_if_cached

command -v go >/dev/null || { log "go is not installed (need Go >= 1.25)"; exit 1; }
mkdir -p "$BIN_DIR" "$WORK_DIR"
# Two callers at once (make and a test, or two test processes) would share the work directories
# and move each other's outputs away: the second one waits for the first, then finds the cache.
exec 9>"$CACHE_ROOT/controlplane/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
exit_if_cached
start=$(date +%s)

# shellcheck source=k8s-commands.sh
. "$(dirname "$0")/k8s-commands.sh"

build_kubernetes() {
  [ -x "$BIN_DIR/kube-apiserver" ] && [ -x "$BIN_DIR/kube-controller-manager" ] \
    && [ -x "$BIN_DIR/kube-scheduler" ] && [ -x "$BIN_DIR/kubectl" ] && return 0
  build_k8s_commands "$WORK_DIR/kubernetes-$K8S_VERSION" sis.local/k8sbuild "$BIN_DIR" \
    kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
  local dir="$WORK_DIR/etcd-$ETCD_VERSION"
  [ -x "$BIN_DIR/etcd" ] && return 0
  mkdir -p "$dir"
  cat > "$dir/go.mod" <<MOD
module sis.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true)
  log "building etcd $ETCD_VERSION"
  (cd "$dir" && go build -trimpath -tags tools -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

build_plain() { # name module-path version ldflags
  local name=$1 pkg=$2 version=$3 ldflags=$4 gobin="$WORK_DIR/gobin-$1-$3"
  [ -x "$BIN_DIR/$name" ] && return 0
  log "building $name $version"
  mkdir -p "$gobin"
  GOBIN="$gobin" go install -trimpath -ldflags "$ldflags" "$pkg@$version"
  mv "$gobin/$name" "$BIN_DIR/$name"
}

build_etcd
build_plain helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
  "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
build_plain kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" "-s -w"
build_kubernetes

have_all || { log "some binaries are missing in $BIN_DIR"; exit 1; }
log "built in $(( $(date +%s) - start ))s: $BIN_DIR"
echo "$BIN_DIR"
