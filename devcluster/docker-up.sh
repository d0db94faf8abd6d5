#!/usr/bin/env bash
# Starts dockerd (Debian's docker.io) for building images, if it is not running.
# No bridge and no iptables rules of its own: builds use --network=host, and the cluster's
# kube-proxy owns the NAT table.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v dockerd >/dev/null || die "dockerd not found; install Debian's docker.io (make deps)"
if docker info >/dev/null 2>&1; then
    log "docker already running"
    exit 0
fi
start dockerd dockerd --bridge=none --iptables=false --ip-masq=false \
    --pidfile "$state/dockerd.self.pid"
wait_for dockerd 60 docker info
log "docker is up"
