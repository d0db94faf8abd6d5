#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl,
# kubeadm (for the kind node image) and etcd from the Go module proxy into a cache keyed by
# version. A second run builds nothing; a cache from before kubeadm was added gets just kubeadm.
#
# `go install k8s.io/kubernetes/cmd/...@vX` is refused because k8s.io/kubernetes replaces its
# staging modules with ./staging paths. So we make a throwaway wrapper module that requires
# k8s.io/kubernetes and replaces each staging module with its published v0.Y.Z tag instead.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${ROLLOUTGATE_CACHE:-$HOME/.cache/rolloutgate}
bin=$cache/k8s/$K8S_VERSION/bin
cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm)
# Marks a finished build of etcd and every command but the ones added later (kubeadm), which are
# checked one by one.
stamp=$bin/.complete-$K8S_VERSION-etcd-$ETCD_VERSION

# crictl lets cluster-down stop pod sandboxes through the CRI (so CNI tears their network down).
# Its module has no replace directives, so a plain `go install` works.
if [[ ! -x $bin/crictl ]]; then
    echo "build-k8s: building crictl $CRICTL_VERSION"
    mkdir -p "$bin"
    GOBIN=$bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
        "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
fi

todo=()
for c in "${cmds[@]}"; do
    [[ -f $stamp && -x $bin/$c ]] || todo+=("$c")
done
if ((${#todo[@]} == 0)); then
    echo "build-k8s: $K8S_VERSION and etcd $ETCD_VERSION already in $bin"
    exit 0
fi

start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

minor_patch=${K8S_VERSION#v1.}          # 34.4
staging_tag=v0.$minor_patch             # v0.34.4
major=1
minor=${minor_patch%%.*}

echo "build-k8s: resolving k8s.io/kubernetes@$K8S_VERSION"
info=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION")
gomod=$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' <<<"$info")
commit=$(sed -n 's/^\t\t"Hash": "\([0-9a-f]*\)",*$/\1/p' <<<"$info" | head -n1)
commit=${commit:-unknown}

cd "$work"
{
    echo "module rolloutgate.invalid/k8sbuild"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # Every staging module the release replaces with a local path gets its published tag.
    sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_tag"'#p' "$gomod"
    echo ")"
} >go.mod

echo "build-k8s: resolving the module graph"
for c in "${todo[@]}"; do
    go get -tool "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"
done
[[ -f $stamp ]] || go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"

build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

mkdir -p "$bin"
pkgs=()
for c in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
echo "build-k8s: building ${todo[*]} (this takes a while on a cold cache)"
# Upstream builds the server binaries without cgo; it also keeps them static.
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/" "${pkgs[@]}"
if [[ ! -f $stamp ]]; then
    echo "build-k8s: building etcd $ETCD_VERSION"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
fi

touch "$stamp"
echo "build-k8s: done in $(( $(date +%s) - start )) s -> $bin"
