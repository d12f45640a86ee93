#!/usr/bin/env bash
# Builds a Go program the test bed needs, from the Go module proxy, into the shared cache
# (~/.cache/sekoia-intel-sync/...) and reuses it on the next run. Two kinds:
#   - a program of the test bed itself (testbed/<name>/ with go.mod: kstatus, argocdhealth), cached
#     under a hash of its sources so an edit rebuilds;
#   - a pinned upstream tool (actionlint, kube-score), cached by version.
# Usage: build.sh <name>. Prints the binary's path on its last line.
set -euo pipefail

NAME="${1:?usage: build.sh kstatus|argocdhealth|actionlint|kube-score}"
TESTBED="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${SIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekoia-intel-sync}"

PKG="" VERSION=""
case "$NAME" in
  # Checks .github/workflows/*.yml (the release workflow cannot run here).
  actionlint) PKG=github.com/rhysd/actionlint/cmd/actionlint VERSION=v1.7.12 ;;
  # The chart's default render is checked for CRITICAL findings.
  kube-score) PKG=github.com/zegl/kube-score/cmd/kube-score VERSION=v1.20.0 ;;
  *)
    [ -f "$TESTBED/$NAME/go.mod" ] || { echo "unknown Go program: $NAME" >&2; exit 2; }
    SRC_DIR="$TESTBED/$NAME"
    VERSION=$(cd "$SRC_DIR" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
    ;;
esac

if [ -n "$PKG" ]; then OUT_DIR="$CACHE_ROOT/gotools/$NAME/$VERSION"; else OUT_DIR="$CACHE_ROOT/$NAME/$VERSION"; fi
BIN="$OUT_DIR/$NAME"

log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }

if [ -x "$BIN" ]; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed (needed to build ${PKG:-testbed/$NAME})"; exit 1; }
mkdir -p "$OUT_DIR"
# Two test processes may ask at once: one builds, the other waits and reuses.
exec 9>"$OUT_DIR/.build.lock"
flock 9
if [ ! -x "$BIN" ]; then
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOMAXPROCS="${GOMAXPROCS:-2}"
  TMP_BIN="$(mktemp -d "$OUT_DIR/.tmp.XXXXXX")"
  if [ -n "$PKG" ]; then
    log "building $PKG@$VERSION into $OUT_DIR"
    GOFLAGS="-buildvcs=false" GOBIN="$TMP_BIN" go install -trimpath -ldflags "-s -w" "$PKG@$VERSION"
  else
    log "building testbed/$NAME into $OUT_DIR"
    (cd "$SRC_DIR" && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -ldflags "-s -w" -o "$TMP_BIN/$NAME" .)
  fi
  mv "$TMP_BIN/$NAME" "$BIN"
  rmdir "$TMP_BIN"
fi
echo "$BIN"
