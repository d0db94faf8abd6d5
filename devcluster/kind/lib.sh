# Shared helpers of the kind node image scripts. Sourced, not run.
# shellcheck shell=bash
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
kind_dir=$here/kind
# shellcheck source=versions.env
source "$kind_dir/versions.env"

# kind as built, and the wrapper everything here runs it through (it puts docker-shim/ first on
# PATH, see docker-shim/docker).
kind_real=$cache/kind/$KIND_VERSION/bin/kind
kind_bin=$cache/kind/$KIND_VERSION/kind
coredns_bin=$cache/coredns/$COREDNS_VERSION/coredns
etcd_bin=$cache/etcd/$KIND_ETCD_VERSION/etcd

log() { echo "kind-image: $*" >&2; }
die() { echo "kind-image: error: $*" >&2; exit 1; }
