#!/usr/bin/env bash
# Builds a pinned Go command-line tool from the Go module proxy into the shared cache
# (~/.cache/sekoia-intel-sync/gotools/<tool>/<version>/), reused on the next run.
# Usage: build.sh actionlint|kube-score. Prints the binary's path on its last line.
set -euo pipefail

TOOL="${1:?usage: build.sh actionlint|kube-score}"
case "$TOOL" in
  # Checks .github/workflows/*.yml (the release workflow cannot run here).
  actionlint) PKG=github.com/rhysd/actionlint/cmd/actionlint VERSION=v1.7.12 ;;
  # The chart's default render is checked for CRITICAL findings.
  kube-score) PKG=github.com/zegl/kube-score/cmd/kube-score VERSION=v1.20.0 ;;
  *) echo "unknown tool: $TOOL" >&2; exit 2 ;;
esac

CACHE_ROOT="${SIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekoia-intel-sync}"
OUT_DIR="$CACHE_ROOT/gotools/$TOOL/$VERSION"
BIN="$OUT_DIR/$TOOL"

log() { printf '[gotools] %s\n' "$*" >&2; }

if [ -x "$BIN" ]; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed (needed to build $PKG@$VERSION)"; exit 1; }
mkdir -p "$OUT_DIR"
exec 9>"$OUT_DIR/.build.lock"
flock 9
if [ ! -x "$BIN" ]; then
  log "building $PKG@$VERSION into $OUT_DIR"
  export CGO_ENABLED=0 GOFLAGS="-buildvcs=false" GOMAXPROCS="${GOMAXPROCS:-2}"
  TMP_BIN="$(mktemp -d "$OUT_DIR/.tmp.XXXXXX")"
  GOBIN="$TMP_BIN" go install -trimpath -ldflags "-s -w" "$PKG@$VERSION"
  mv "$TMP_BIN/$TOOL" "$BIN"
  rmdir "$TMP_BIN"
fi
echo "$BIN"
