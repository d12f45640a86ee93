#!/usr/bin/env bash
# Builds the project's image on this machine, without Docker and without a registry:
#
#  1. the pause image: a static C program (pause.c) in an otherwise empty image;
#  2. a Python 3.13 base equivalent to the Dockerfile's PYTHON_IMAGE (python:3.13-slim), assembled
#     from Debian trixie's packages with mmdebstrap (trixie ships python3.13);
#  3. the project's own Dockerfile, unchanged, built on that base with buildah
#     (--build-arg PYTHON_IMAGE=...), i.e. what users build with `docker build`.
#
# Each result is an image archive named by the hash of its inputs under
# ~/.cache/sekoia-intel-sync/node/images; a second run with the same inputs rebuilds nothing.
# Prints three lines `pause=<archive> <ref>`, `base=...`, `image=...` (the last one on the last line).
#
# RUN steps use the host's network (`--network host`) and the host's CA bundle mounted read-only
# over the image's: this machine reaches PyPI through a TLS-intercepting egress proxy whose CA only
# the host trusts. The mount exists during RUN only and never lands in a layer.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/testbed/node"
CACHE_ROOT="${SIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sekoia-intel-sync}"
NODE_CACHE="$CACHE_ROOT/node"
IMAGES="$NODE_CACHE/images"
STORE=(--root "$NODE_CACHE/containers/storage" --runroot "$NODE_CACHE/containers/run" --storage-driver overlay)
DEBIAN_SUITE="${SIS_BASE_SUITE:-trixie}"
DEBIAN_MIRROR="${SIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY="${SIS_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
HOST_CA="${SIS_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

log() { printf '[build-image] %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { log "$1 is missing: apt-get install $2"; exit 1; }; }
need buildah buildah
need mmdebstrap mmdebstrap
need gcc gcc
[ "$(id -u)" = 0 ] || { log "building images here needs root (buildah with runc, mmdebstrap)"; exit 1; }

mkdir -p "$IMAGES"
exec 9>"$NODE_CACHE/.build-image.lock"
if ! flock -n 9; then log "another image build is running; waiting for it"; flock 9; fi

hash_of() { sha256sum | cut -c1-16; }
archive_ok() { [ -s "$1" ]; }

# ------------------------------------------------------------------------------------ pause
PAUSE_RECIPE="gcc -Os -static; entrypoint /pause; user 65535"
pause_hash=$( { echo "$PAUSE_RECIPE"; cat "$HERE/pause.c"; } | hash_of)
pause_ref="localhost/sis-pause:$pause_hash"
pause_tar="$IMAGES/pause-$pause_hash.tar"
if ! archive_ok "$pause_tar"; then
  t0=$(date +%s)
  work=$(mktemp -d)
  gcc -Os -static -o "$work/pause" "$HERE/pause.c"
  strip "$work/pause"
  ctr=$(buildah "${STORE[@]}" from scratch)
  buildah "${STORE[@]}" copy "$ctr" "$work/pause" /pause >/dev/null
  buildah "${STORE[@]}" config --entrypoint '["/pause"]' --cmd '' --user 65535:65535 "$ctr"
  buildah "${STORE[@]}" commit --quiet --rm "$ctr" "$pause_ref" >/dev/null
  buildah "${STORE[@]}" push --quiet "$pause_ref" "docker-archive:$pause_tar.tmp:$pause_ref"
  mv "$pause_tar.tmp" "$pause_tar"
  rm -rf "$work"
  log "pause image built in $(( $(date +%s) - t0 ))s: $pause_ref"
else
  log "pause image cached: $pause_ref"
fi
echo "pause=$pause_tar $pause_ref"

# ------------------------------------------------------------------------------------- base
# The recipe is the key: the package set, suite and this script. (The archive moves on; a rebuild
# is forced by removing the archive, or by SIS_BASE_STAMP=<anything new>.)
BASE_PACKAGES="ca-certificates,python3,python3-venv,python-is-python3,passwd,tzdata,netbase"
BASE_OPTIONS=(--variant=apt --include="$BASE_PACKAGES"
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*' --aptopt='Acquire::Languages "none"')
base_hash=$(printf '%s\n' "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "${BASE_OPTIONS[@]}" "${SIS_BASE_STAMP:-}" | hash_of)
base_ref="localhost/sis-python:3.13-$DEBIAN_SUITE-$base_hash"
base_tar="$IMAGES/python-$base_hash.tar"
if ! archive_ok "$base_tar"; then
  t0=$(date +%s)
  work=$(mktemp -d)
  # minbase + apt (the Dockerfile's stages run apt-get), no documentation or man pages (as -slim).
  mmdebstrap --quiet "${BASE_OPTIONS[@]}" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$DEBIAN_SUITE" "$work/rootfs.tar" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE main" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main" \
    "deb $DEBIAN_SECURITY $DEBIAN_SUITE-security main"
  ctr=$(buildah "${STORE[@]}" from scratch)
  buildah "${STORE[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah "${STORE[@]}" config --env LANG=C.UTF-8 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd python3 "$ctr"
  buildah "${STORE[@]}" commit --quiet --rm "$ctr" "$base_ref" >/dev/null
  buildah "${STORE[@]}" push --quiet "$base_ref" "docker-archive:$base_tar.tmp:$base_ref"
  mv "$base_tar.tmp" "$base_tar"
  rm -rf "$work"
  log "base image built in $(( $(date +%s) - t0 ))s: $base_ref"
else
  log "base image cached: $base_ref"
  # The store may have been wiped while the archive survived.
  buildah "${STORE[@]}" inspect --type image "$base_ref" >/dev/null 2>&1 \
    || buildah "${STORE[@]}" pull --quiet "docker-archive:$base_tar" >/dev/null
fi
echo "base=$base_tar $base_ref"

# ---------------------------------------------------------------------------------- project
cd "$ROOT"
src_hash=$( { echo "$base_hash"; cat Dockerfile pyproject.toml README.md;
  find operator connector_runtime -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
    | sort -z | xargs -0 sha256sum; } | hash_of)
image_ref="localhost/sekoia-intel-sync:0.1.0-$src_hash"
image_tar="$IMAGES/sekoia-intel-sync-$src_hash.tar"
if ! archive_ok "$image_tar"; then
  t0=$(date +%s)
  # Only what the Dockerfile copies goes into the context (the checkout holds virtualenvs).
  ctx=$(mktemp -d)
  cp -r Dockerfile pyproject.toml README.md operator connector_runtime "$ctx/"
  find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
  buildah "${STORE[@]}" bud --quiet --layers --network host \
    --volume "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro" \
    --build-arg "PYTHON_IMAGE=$base_ref" --build-arg "REVISION=$src_hash" \
    -t "$image_ref" "$ctx" >&2
  buildah "${STORE[@]}" push --quiet "$image_ref" "docker-archive:$image_tar.tmp:$image_ref"
  mv "$image_tar.tmp" "$image_tar"
  rm -rf "$ctx"
  log "project image built in $(( $(date +%s) - t0 ))s: $image_ref"
else
  log "project image cached: $image_ref"
fi
echo "image=$image_tar $image_ref"
