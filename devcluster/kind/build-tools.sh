#!/usr/bin/env bash
# Builds what the kind node image needs beyond the local cluster's binaries, from the Go module
# proxy, each into a cache keyed by version (a second run builds nothing):
#   kind     sigs.k8s.io/kind          -> $cache/kind/<version>/bin/kind, run through the wrapper
#            $cache/kind/<version>/kind (see docker-shim/docker)
#   CoreDNS  github.com/coredns/coredns -> $cache/coredns/<version>/coredns
#   etcd     go.etcd.io/etcd/server/v3  -> $cache/etcd/<version>/etcd  (the version kubeadm names;
#            the local cluster's etcd follows the API server's module graph instead)
# kubeadm comes with the Kubernetes binaries (devcluster/build-k8s.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "Go is needed to build kind, CoreDNS and etcd; install Go 1.24 or newer"

# install_module WHAT DIR PKG@VERSION: `go install` of a module without replace directives.
install_module() {
    local what=$1 dir=$2 pkg=$3 t0=$SECONDS
    log "building $what ($pkg)"
    mkdir -p "$dir"
    GOBIN=$dir CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w" "$pkg"
    log "$what built in $((SECONDS - t0)) s"
}

if [[ ! -x $kind_real ]]; then
    install_module kind "$(dirname "$kind_real")" "sigs.k8s.io/kind@$KIND_VERSION"
fi
# The shim and the wrapper are copied on every run (cheap), so the cache follows the repository.
kind_home=$(dirname "$kind_bin")
mkdir -p "$kind_home/shim"
install -m 0755 "$kind_dir/docker-shim/docker" "$kind_home/shim/docker.new"
mv "$kind_home/shim/docker.new" "$kind_home/shim/docker"
cat >"$kind_bin.new" <<WRAPPER
#!/bin/sh
# kind $KIND_VERSION as rolloutgate runs it: docker-shim first on PATH (devcluster/kind/docker-shim).
PATH="$kind_home/shim:\$PATH" exec "$kind_real" "\$@"
WRAPPER
chmod 0755 "$kind_bin.new"
mv "$kind_bin.new" "$kind_bin"
if [[ ! -x $coredns_bin ]]; then
    install_module CoreDNS "$(dirname "$coredns_bin")" "github.com/coredns/coredns@$COREDNS_VERSION"
fi

# etcd's server module replaces its sibling modules with relative paths, so `go install` refuses
# it; a throwaway module that requires it resolves the published versions instead.
if [[ ! -x $etcd_bin ]]; then
    t0=$SECONDS
    log "building etcd $KIND_ETCD_VERSION"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (
        cd "$work"
        go mod init rolloutgate.invalid/etcdbuild >/dev/null 2>&1
        go get -tool "go.etcd.io/etcd/server/v3@$KIND_ETCD_VERSION"
        mkdir -p "$(dirname "$etcd_bin")"
        CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" \
            -o "$etcd_bin.tmp" go.etcd.io/etcd/server/v3
        mv "$etcd_bin.tmp" "$etcd_bin"
    )
    log "etcd built in $((SECONDS - t0)) s"
fi
log "kind $KIND_VERSION, CoreDNS $COREDNS_VERSION, etcd $KIND_ETCD_VERSION present"
