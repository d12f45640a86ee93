#!/usr/bin/env bash
# Builds one of the test bed's small Go programs (testbed/<name>/: go.mod, go.sum, *.go), fetching its
# modules from the Go module proxy, into the shared cache. The cache key is a hash of the program's
# sources, so an edit rebuilds and a second run reuses. Prints the binary's path on its last line.
# Usage: testbed/gotool.sh <name>     e.g. kstatus, argocdhealth
set -euo pipefail

NAME="${1:?usage: gotool.sh <program folder under testbed/>}"
SRC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/$NAME" && pwd)"
CACHE_ROOT="${SIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekoia-intel-sync}"
HASH=$(cd "$SRC_DIR" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
OUT_DIR="$CACHE_ROOT/$NAME/$HASH"
BIN="$OUT_DIR/$NAME"

log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }

if [ -x "$BIN" ]; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed (need the Go named in $SRC_DIR/go.mod)"; exit 1; }
mkdir -p "$OUT_DIR"
# Two test processes may ask at once: one builds, the other waits and reuses.
exec 9>"$CACHE_ROOT/$NAME/.build.lock"
flock 9
if [ ! -x "$BIN" ]; then
  log "building into $OUT_DIR"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOMAXPROCS="${GOMAXPROCS:-2}"
  (cd "$SRC_DIR" && go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" .)
  mv "$BIN.tmp" "$BIN"
fi
echo "$BIN"
