#!/usr/bin/env bash
# Builds the base image rolloutgate/debian:bookworm-<hash> from Debian packages alone: no
# registry is reachable here, so there is no `FROM debian`. debootstrap a minbase root
# filesystem with python3, trim what a container never uses, tar it, `docker import` it.
# Prints the image name. Reuses the cached tarball and the imported image when they exist.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

suite=bookworm
# python3 is all the service needs at run time: the venv is made with --without-pip and filled
# from wheels by a pip wheel, so neither python3-venv nor python3-pip is in the image.
packages=python3
# Bump when the way the root filesystem is made changes (trimming below, debootstrap options).
revision=2
key=$(printf '%s\n' "$suite" "$packages" "$revision" | sha256sum | cut -c1-12)
image=rolloutgate/debian:$suite-$key
tarball=$cache/rootfs/$suite-$key.tar

if image_exists "$image"; then
    log "base image $image exists"
    echo "$image"
    exit 0
fi

if [[ ! -s $tarball ]]; then
    command -v debootstrap >/dev/null || die "debootstrap not found; apt-get install debootstrap"
    mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
    mkdir -p "$cache/rootfs"
    work=$(mktemp -d "$cache/rootfs/work.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    log "debootstrap $suite (minbase + $packages) into $work/root"
    # debootstrap has no timeout of its own; a stalled mirror should fail the build, not hang it.
    timeout 1200 debootstrap --variant=minbase --include="$packages" "$suite" "$work/root" "$mirror" \
        >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above); check the mirror in /etc/apt/sources.list.d/debian.sources"; }
    root=$work/root
    # Nothing at run time installs packages, reads docs or switches locale: drop them.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
    # The standard library ships compiled, by the image's own python3 (revision 1 removed the
    # .pyc files to save space): without them every Python process in every pod compiles what it
    # imports again, ~0.9 CPU-s more per start of MLServer with scikit-learn (iris image).
    find "$root/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} +
    chroot "$root" python3 -m compileall -q -j 0 /usr/lib/python3.11 >/dev/null \
        || die "compiling the standard library in the root file system failed"
    # Sorted, owner-neutral tar so the same packages give the same bytes where debootstrap allows.
    # Written inside the private work dir and renamed: a concurrent build never sees half a tar.
    tar --numeric-owner --sort=name -C "$root" -cf "$work/rootfs.tar" .
    mv "$work/rootfs.tar" "$tarball"
fi

log "docker import $tarball as $image"
docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
echo "$image"
