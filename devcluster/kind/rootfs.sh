#!/usr/bin/env bash
# The Debian bookworm root filesystem of the kind node image, made once with debootstrap and
# cached as a tarball keyed by suite and packages. Prints the tarball's path.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

suite=bookworm
# What the node runs beyond minbase: systemd as init, containerd + runc as the kubelet's runtime,
# the CNI plugins, and the tools the kubelet, kube-proxy and the entrypoint call. No udev, D-Bus
# or getty: systemd only supervises containerd and the kubelet (runc reaches systemd over its
# private socket when there is no D-Bus).
packages=systemd,systemd-sysv,containerd,runc,containernetworking-plugins,iptables,conntrack,iproute2,ethtool,kmod,libseccomp2,procps,socat,ca-certificates,mount,util-linux,netbase
# Bump when the way the root filesystem is made changes.
revision=1
key=$(printf '%s\n' "$suite" "$packages" "$revision" | sha256sum | cut -c1-12)
tarball=$cache/rootfs/kind-node-$suite-$key.tar
if [[ -s $tarball ]]; then
    echo "$tarball"
    exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap missing; run 'make deps'"
# The mirror this machine's apt uses (no host name is written into the repository).
# shellcheck source=../../examples/iris/scripts/lib.sh
mirror=${DEBIAN_MIRROR:-$(source "$repo/examples/iris/scripts/lib.sh" && debian_mirror)}
mkdir -p "$cache/rootfs"
work=$(mktemp -d "$cache/rootfs/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
log "debootstrap $suite (minbase + ${packages//,/ })"
# debootstrap has no timeout of its own; a stalled mirror must fail the build, not hang it.
timeout 1800 debootstrap --variant=minbase --include="$packages" "$suite" "$work/root" "$mirror" \
    >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
# Nothing in the node installs packages, reads documentation or switches locale.
rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/var/cache/apt/* \
    "$work/root"/usr/share/doc/* "$work/root"/usr/share/man/* "$work/root"/usr/share/info/* \
    "$work/root"/usr/share/locale/* "$work/root"/var/log/*.log "$work/root"/tmp/*
# Written inside the private work directory and renamed: a concurrent build never sees half a tar.
tar --numeric-owner --sort=name -C "$work/root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$tarball"
log "root filesystem in $((SECONDS - t0)) s: $tarball ($(du -h "$tarball" | cut -f1))"
echo "$tarball"
