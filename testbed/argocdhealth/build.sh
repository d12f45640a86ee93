#!/usr/bin/env bash
# Builds testbed/argocdhealth (gopher-lua, as Argo CD runs health scripts, from the Go module proxy) into the
# shared cache, keyed by a hash of its sources so an edit rebuilds and a second run reuses.
# Prints the binary's path on its last line.
set -euo pipefail

SRC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${SIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekoia-intel-sync}"
HASH=$(cd "$SRC_DIR" && cat go.mod go.sum main.go | sha256sum | cut -c1-16)
OUT_DIR="$CACHE_ROOT/argocdhealth/$HASH"
BIN="$OUT_DIR/argocdhealth"

log() { printf '[argocdhealth] %s\n' "$*" >&2; }

if [ -x "$BIN" ]; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed (need the Go named in $SRC_DIR/go.mod)"; exit 1; }
mkdir -p "$OUT_DIR"
exec 9>"$CACHE_ROOT/argocdhealth/.build.lock"
flock 9
if [ ! -x "$BIN" ]; then
  log "building into $OUT_DIR"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOMAXPROCS="${GOMAXPROCS:-2}"
  (cd "$SRC_DIR" && go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" .)
  mv "$BIN.tmp" "$BIN"
fi
echo "$BIN"
