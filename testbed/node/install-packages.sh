#!/usr/bin/env bash
# Installs (with apt-get, saying so first) the Debian packages the real node and the image build
# need. Run by `make test`/`make test-node` unless SIS_REAL_NODE=0; never silently.
#
#   containerd                  CRI runtime (the kubelet's container runtime)
#   runc                        OCI runtime containerd and buildah start containers with
#   containernetworking-plugins CNI bridge, host-local and loopback for Pod networking
#   buildah                     builds the project's Dockerfile without a Docker engine
#   mmdebstrap                  assembles the Python 3.13 base image from Debian packages
#   iptables                    kube-proxy's Service rules
set -euo pipefail
PACKAGES=(containerd runc containernetworking-plugins buildah mmdebstrap iptables)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[install-packages] already installed: ${PACKAGES[*]}" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "[install-packages] missing Debian packages: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
  echo "[install-packages] (or set SIS_REAL_NODE=0 to leave the real-node tests out)" >&2
  exit 1
fi
echo "[install-packages] installing with apt-get: ${missing[*]}" >&2
# The Debian package of containerd enables a system service where systemd runs; the real node
# starts its own containerd with its own config and socket and never uses that one.
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
  || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
for p in "${PACKAGES[@]}"; do
  printf '[install-packages] %s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")" >&2
done
