#!/usr/bin/env bash
# Installs what the local cluster and the image builds need from Debian's packages.
# Already-installed packages make this a fast no-op.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

packages=(
    containerd runc containernetworking-plugins iptables conntrack openssl curl
    docker.io catatonit busybox-static debootstrap iproute2 socat ethtool
    # `python3 -m venv` for the Makefile's .venv (Debian's python3 has no ensurepip without it).
    python3-venv
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || die "Go is needed to build Kubernetes from the module proxy; install Go 1.24 or newer"
log "Debian packages present"
