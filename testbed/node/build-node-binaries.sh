#!/usr/bin/env bash
# Builds kubelet and kube-proxy from the Go module proxy: the same Kubernetes version and the same
# wrapper module (testbed/controlplane/k8s-commands.sh) as the control plane's build. Cached by
# version; prints the directory on its last line.
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

# shellcheck source=../controlplane/k8s-commands.sh
. "$(dirname "$0")/../controlplane/k8s-commands.sh"
build_k8s_commands "$WORK_DIR" sis.local/kubeletbuild "$BIN_DIR" kubelet kube-proxy
log "built in $(( $(date +%s) - start ))s: $BIN_DIR"
echo "$BIN_DIR"
