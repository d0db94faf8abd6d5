#!/usr/bin/env bash
# Builds a kind node image for the project's Kubernetes version without any registry:
#   rolloutgate/kind-node:<k8s version>-<key>
# `kind build node-image` cannot run here (it fetches images from registries and needs a newer
# ctr), so the image is assembled from what the project already builds:
#   - a Debian bookworm root filesystem (debootstrap) with systemd, containerd, runc, the CNI
#     plugins and the tools the kubelet and kube-proxy call, plus the files under node/;
#   - kubeadm, kubelet, kubectl and crictl from devcluster/build-k8s.sh;
#   - every image kubeadm and kind start, made here with `docker import` and pre-imported into the
#     node's containerd: kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy (with
#     iptables and conntrack from the same root filesystem), etcd and CoreDNS (build-tools.sh),
#     pause (Debian's catatonit).
# kindnetd is replaced by a CNI configuration baked into /etc/cni/net.d.
#
# The image is keyed by every version and by the content of this directory; a second run finds it
# (or loads the saved copy in the cache) and builds nothing. Prints the image name on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

t0=$SECONDS
# Content key: versions, packages and every file this image is made from.
key=$(
    {
        printf '%s\n' "$K8S_VERSION" "$KIND_VERSION" "$KIND_ETCD_VERSION" "$COREDNS_VERSION" \
            "$PAUSE_TAGS" "$NODE_IMAGE_REVISION"
        (cd "$kind_dir" && find node kube-proxy ./*.sh versions.env -type f -print0 |
            sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -c1-12
)
image=rolloutgate/kind-node:$K8S_VERSION-$key
out=$cache/kind-node/$K8S_VERSION-$key
marker=$cache/kind/node-image.json

write_marker() {
    mkdir -p "$(dirname "$marker")"
    printf '{"image": "%s", "kind": "%s", "kubernetes": "%s", "kind_version": "%s"}\n' \
        "$image" "$kind_bin" "$K8S_VERSION" "$KIND_VERSION" >"$marker.tmp"
    mv "$marker.tmp" "$marker"
}

docker info >/dev/null 2>&1 || die "docker is not running; run 'make docker-up'"
if docker image inspect "$image" >/dev/null 2>&1; then
    log "$image exists ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
    write_marker
    echo "$image"
    exit 0
fi
if [[ -s $out/node.tar ]]; then
    log "loading $image from $out/node.tar"
    docker load -i "$out/node.tar" >/dev/null
    write_marker
    log "loaded in $((SECONDS - t0)) s"
    echo "$image"
    exit 0
fi

for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy crictl; do
    [[ -x $k8s_bin/$b ]] || die "$k8s_bin/$b missing; run 'make k8s' first"
done
for b in "$kind_bin" "$coredns_bin" "$etcd_bin"; do
    [[ -x $b ]] || die "$b missing; run devcluster/kind/build-tools.sh (make kind-image does)"
done
[[ -x /usr/bin/catatonit ]] || die "/usr/bin/catatonit missing; run 'make deps'"

mkdir -p "$cache/rootfs" "$cache/kind-node"
work=$(mktemp -d "$cache/kind-node/work.XXXXXX")
builder=rolloutgate-kind-build-$key
stage=rolloutgate/kind-node-stage:$key
committed=$stage-images
cleanup() {
    docker rm -f "$builder" >/dev/null 2>&1 || true
    # Intermediate images (untagged only, when the final image holds their layers).
    docker rmi "$committed" "$stage" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- 1. Root filesystem (debootstrap once, cached; rootfs.sh).
rootfs_tar=$("$kind_dir/rootfs.sh")
root=$work/root
mkdir -p "$root"
tar --numeric-owner -C "$root" -xf "$rootfs_tar"

# --- 2. Component images, each a single layer made with `docker import`.
env_path='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
images=()
# import_dir DIR TAG CHANGE...: a layer from DIR (owned by root), imported as TAG.
import_dir() {
    local dir=$1 tag=$2
    shift 2
    local changes=(--change "$env_path")
    for c in "$@"; do changes+=(--change "$c"); done
    tar --numeric-owner --owner=0 --group=0 --sort=name -C "$dir" -c . |
        docker import "${changes[@]}" - "$tag" >/dev/null
    images+=("$tag")
}
# A directory with the usual empty top-level directories a program may write to.
skeleton() {
    mkdir -p "$1"/{tmp,run,etc,var/run,usr/local/bin}
    chmod 1777 "$1/tmp"
    # Lets a process look up its own user id (glibc-free Go programs read /etc/passwd).
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' \
        >"$1/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
}

reg=registry.k8s.io
for c in kube-apiserver kube-controller-manager kube-scheduler; do
    d=$work/img/$c
    skeleton "$d"
    install -m 0755 "$k8s_bin/$c" "$d/usr/local/bin/$c"
    # No ENTRYPOINT, as upstream: kubeadm's static pod manifests give the command.
    import_dir "$d" "$reg/$c:$K8S_VERSION"
done

d=$work/img/etcd
skeleton "$d"
install -m 0755 "$etcd_bin" "$d/usr/local/bin/etcd"
mkdir -p "$d/var/lib/etcd"
import_dir "$d" "$reg/etcd:$KIND_ETCD_TAG"

d=$work/img/coredns
skeleton "$d"
install -m 0755 "$coredns_bin" "$d/coredns"
import_dir "$d" "$reg/coredns/coredns:$COREDNS_VERSION" 'ENTRYPOINT ["/coredns"]'

d=$work/img/pause
skeleton "$d"
install -m 0755 /usr/bin/catatonit "$d/catatonit"
for t in $PAUSE_TAGS; do
    import_dir "$d" "$reg/pause:$t" 'USER 65535:65535' 'ENTRYPOINT ["/catatonit", "-P"]'
done

# kube-proxy calls iptables(-save/-restore), ip6tables and conntrack: copy them with the libraries
# and xtables extensions they load from the node's own root filesystem, so both agree on versions.
d=$work/img/kube-proxy
skeleton "$d"
install -m 0755 "$k8s_bin/kube-proxy" "$d/usr/local/bin/kube-proxy"
mkdir -p "$d/usr/sbin" "$d/bin" "$d/usr/lib" "$d/usr/lib64"
# Merged /usr, as in the root filesystem: the loader and the libraries live under usr/.
ln -s usr/lib "$d/lib"
ln -s usr/lib64 "$d/lib64"
arch_lib=usr/lib/x86_64-linux-gnu
progs=(usr/sbin/xtables-nft-multi usr/sbin/xtables-legacy-multi usr/sbin/conntrack usr/bin/dash)
mapfile -t exts < <(cd "$root" && printf '%s\n' "$arch_lib"/xtables/*.so)
libs=()
for f in "${progs[@]}" "${exts[@]}"; do
    [[ -e $root/$f ]] || die "$f missing from the node root filesystem"
    # ldd inside the root filesystem: the libraries the node's own binaries link.
    while read -r lib; do libs+=("$lib"); done < <(chroot "$root" ldd "/$f" |
        awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}')
done
(cd "$root" && cp -a --parents "${progs[@]}" "$arch_lib/xtables" etc/protocols etc/ethertypes "$d/")
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
    # /lib/x... and /usr/lib/x... are one directory here; copy the file the name resolves to.
    rel=${lib#/}
    [[ $rel == usr/* ]] || rel=usr/$rel
    mkdir -p "$d/$(dirname "$rel")"
    # Resolve inside the root filesystem: its links are absolute.
    cp "$root$(chroot "$root" readlink -f "$lib")" "$d/$rel"
done
ln -s ../usr/bin/dash "$d/bin/dash"
ln -s dash "$d/bin/sh"
install -m 0755 "$kind_dir/kube-proxy/iptables-wrapper" "$d/usr/sbin/iptables-wrapper"
for fam in iptables ip6tables; do
    for mode in nft legacy; do
        for suffix in "" -save -restore; do
            ln -s "xtables-$mode-multi" "$d/usr/sbin/$fam-$mode$suffix"
        done
    done
    for suffix in "" -save -restore; do ln -s iptables-wrapper "$d/usr/sbin/$fam$suffix"; done
done
import_dir "$d" "$reg/kube-proxy:$K8S_VERSION"
log "component images: ${images[*]}"
docker save "${images[@]}" -o "$work/images.tar"
# They live on inside the node image; Docker need not keep a second copy.
docker rmi "${images[@]}" >/dev/null

# --- 3. The node's own files on top of the root filesystem.
cp -a "$kind_dir/node/." "$root/"
chmod 0755 "$root/usr/local/bin/entrypoint"
for b in kubeadm kubelet kubectl; do install -m 0755 "$k8s_bin/$b" "$root/usr/bin/$b"; done
install -m 0755 "$k8s_bin/crictl" "$root/usr/local/bin/crictl"
echo "$K8S_VERSION" >"$root/kind/version"
mkdir -p "$root/etc/kubernetes/manifests" "$root/opt/cni"
# CNIs written for kind install their plugins into /opt/cni/bin; Debian's live in /usr/lib/cni.
ln -sfn /usr/lib/cni "$root/opt/cni/bin"
# systemd in a container: start only what the node needs. Debian enabled units at install time;
# drop those links, then enable containerd and the kubelet.
rm -f "$root"/etc/systemd/system/*.wants/* "$root"/lib/systemd/system/multi-user.target.wants/* \
    "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/basic.target.wants/* \
    "$root"/lib/systemd/system/sockets.target.wants/*udev* \
    "$root"/lib/systemd/system/sockets.target.wants/*initctl* \
    "$root"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -s /lib/systemd/system/containerd.service "$root/etc/systemd/system/multi-user.target.wants/"
ln -s /etc/systemd/system/kubelet.service "$root/etc/systemd/system/multi-user.target.wants/"
# binfmt_misc is host-wide: a node must not register interpreters on the host.
ln -sfn /dev/null "$root/etc/systemd/system/systemd-binfmt.service"
# The kubelet reads /dev/kmsg itself; journald must not compete for it.
echo "ReadKMsg=no" >>"$root/etc/systemd/journald.conf"
[[ -e $root/sbin/init ]] || ln -s /lib/systemd/systemd "$root/sbin/init"
# Each node makes its own machine id at start (entrypoint).
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"

tar --numeric-owner --sort=name -C "$root" -c . | docker import - "$stage" >/dev/null
rm -rf "$root" "$work/img"

# --- 4. Pre-import the component images into the node's containerd. Content only (--no-unpack):
# the build container's root is overlayfs, where containerd's overlay snapshotter cannot work;
# the node's containerd unpacks an image when it first creates a container from it.
docker run -d --name "$builder" --network none --tmpfs /run --tmpfs /tmp \
    --entrypoint /usr/bin/containerd "$stage" >/dev/null
deadline=$((SECONDS + 60))
until docker exec "$builder" ctr version >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { docker logs "$builder" 2>&1 | tail -n 20 >&2; die "containerd did not start in the build container"; }
    sleep 0.5
done
docker exec -i "$builder" ctr -n k8s.io images import --no-unpack --all-platforms - <"$work/images.tar" >/dev/null
listed=$(docker exec "$builder" ctr -n k8s.io images ls -q)
for i in "${images[@]}"; do
    grep -qx "$i" <<<"$listed" || die "$i missing from the node's containerd after import: $listed"
done
docker stop -t 30 "$builder" >/dev/null
docker commit "$builder" "$committed" >/dev/null
docker rm "$builder" >/dev/null

# --- 5. The final image: what kind runs. `docker import` and `commit` cannot set STOPSIGNAL.
mkdir -p "$work/final"
cat >"$work/final/Dockerfile" <<DOCKERFILE
FROM $committed
ENV container=docker
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# systemd halts cleanly on SIGRTMIN+3.
STOPSIGNAL SIGRTMIN+3
LABEL org.rolloutgate.kubernetes="$K8S_VERSION" org.rolloutgate.kind="$KIND_VERSION"
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
CMD []
DOCKERFILE
# The classic builder: BuildKit is not part of Debian's docker.io 20.10. No RUN step, no network.
if ! DOCKER_BUILDKIT=0 docker build --network=none -q -t "$image" "$work/final" >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    die "docker build of the final image failed (output above)"
fi
mkdir -p "$out"
docker save "$image" -o "$out/node.tar.tmp"
mv "$out/node.tar.tmp" "$out/node.tar"
write_marker
# Earlier builds for this Kubernetes version are superseded: free their ~1 GB in Docker and in
# the cache (an image a running node uses stays: docker refuses to remove it).
for old in $(docker images --format '{{.Repository}}:{{.Tag}}' "rolloutgate/kind-node" |
    grep "^rolloutgate/kind-node:$K8S_VERSION-" | grep -vx "$image"); do
    docker rmi "$old" >/dev/null 2>&1 && log "removed superseded $old" || true
    rm -rf "$cache/kind-node/${old#rolloutgate/kind-node:}"
done
size=$(docker image inspect -f '{{.Size}}' "$image")
log "built $image in $((SECONDS - t0)) s: $(numfmt --to=iec "$size") ($size bytes); saved to $out/node.tar"
echo "$image"
