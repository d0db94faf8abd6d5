#!/usr/bin/env bash
# Starts a single-node Kubernetes as host processes: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd, kubelet and kube-proxy. Idempotent: running it twice leaves one
# healthy cluster. Writes the kubeconfig (context `local`) to .cluster/kubeconfig in the repo.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

t0=$SECONDS
[[ $EUID -eq 0 ]] || die "must run as root (kubelet, containerd and kube-proxy manage cgroups, mounts and iptables)"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; do
    [[ -x $k8s_bin/$b ]] || die "$k8s_bin/$b missing; run 'make k8s' (devcluster/build-k8s.sh) first"
done
for b in containerd containerd-shim-runc-v2 runc ctr iptables conntrack openssl; do
    command -v "$b" >/dev/null || die "$b not found; run 'make deps' to install the Debian packages"
done
[[ -x /usr/lib/cni/bridge ]] || die "CNI plugins missing in /usr/lib/cni; run 'make deps'"

node=${NODE_NAME:-$(hostname -s | tr '[:upper:]' '[:lower:]')}
# The node IP is the address of the interface holding the default route; kubelet refuses loopback.
node_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[[ -n $node_ip ]] || die "no IPv4 default route; the kubelet needs a non-loopback node IP"
export NODE_NAME=$node

# Pid files but no process of the cluster: the last run was killed (a session or CI job ended,
# a reboot). Its pods' mounts, network namespaces, bridge and IP allocations are still there;
# clear them the way cluster-down does before starting afresh.
if compgen -G "$pids/*.pid" >/dev/null && ! pid_alive etcd && ! pid_alive containerd &&
    ! pid_alive kubelet; then
    log "cleaning up after a cluster that was not stopped with cluster-down"
    # Surviving pod processes (shims outlive a killed containerd) make it complain; containerd
    # reconnects to them on start and the kubelet stops what no pod owns any more.
    "$here/cluster-down.sh" || log "leftover pod processes will be reconciled by the kubelet"
fi
"$here/pki.sh"

pki=$state/pki
conf=$state/conf
run=/run/rolloutgate
cri_sock=$run/containerd/containerd.sock
mkdir -p "$conf" "$logs" "$pids" "$run" "$state/cni/net.d"
PATH=$k8s_bin:$PATH

# kubeconfig FILE USER: a kubeconfig for one component's client certificate.
kubeconfig() {
    local file=$1 user=$2
    KUBECONFIG=$file kubectl config set-cluster local --server=https://127.0.0.1:6443 \
        --certificate-authority="$pki/ca.crt" --embed-certs >/dev/null
    KUBECONFIG=$file kubectl config set-credentials "$user" --client-certificate="$pki/$user.crt" \
        --client-key="$pki/$user.key" --embed-certs >/dev/null
    KUBECONFIG=$file kubectl config set-context local --cluster=local --user="$user" >/dev/null
    KUBECONFIG=$file kubectl config use-context local >/dev/null
}
for u in admin controller-manager scheduler kubelet kube-proxy; do
    [[ -f $conf/$u.kubeconfig ]] || kubeconfig "$conf/$u.kubeconfig" "$u"
done

# --- etcd: plain HTTP on loopback only. --unsafe-no-fsync: a throwaway cluster on a VM disk,
# where fsync latency would otherwise dominate every write.
start etcd "$k8s_bin/etcd" --name local --data-dir "$state/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster local=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --unsafe-no-fsync --quota-backend-bytes 2147483648
wait_for etcd 60 curl -fsS http://127.0.0.1:2381/health

# --- kube-apiserver, with an audit log (Metadata level) so benchmarks can count requests.
write_file "$conf/audit-policy.yaml" <<YAML
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
YAML
start kube-apiserver "$k8s_bin/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$node_ip" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --profiling=false \
    --audit-policy-file="$conf/audit-policy.yaml" --audit-log-path="$logs/audit.log" \
    --audit-log-maxsize=200 --audit-log-maxbackup=1
wait_for kube-apiserver 120 kubectl --kubeconfig "$conf/admin.kubeconfig" get --raw /readyz

start kube-controller-manager "$k8s_bin/kube-controller-manager" \
    --kubeconfig="$conf/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$conf/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$conf/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR"
start kube-scheduler "$k8s_bin/kube-scheduler" \
    --kubeconfig="$conf/scheduler.kubeconfig" \
    --authentication-kubeconfig="$conf/scheduler.kubeconfig" \
    --authorization-kubeconfig="$conf/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false
wait_for kube-controller-manager 60 curl -fsSk https://127.0.0.1:10257/healthz
wait_for kube-scheduler 60 curl -fsSk https://127.0.0.1:10259/healthz

# --- containerd with the CRI plugin; its own socket, so Docker's containerd stays separate.
write_file "$conf/containerd.toml" <<TOML
version = 2
root = "$state/containerd"
state = "$run/containerd/state"
[grpc]
  address = "$cri_sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The VM withholds CAP_SYS_RESOURCE, so runc cannot lower a sandbox's oom_score_adj to the
  # kubelet's -998 (it fails with "can't get final child's PID from pipe"). Clamp instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
TOML
write_file "$state/cni/net.d/10-rolloutgate.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "rolloutgate",
  "plugins": [
    {
      "type": "bridge", "bridge": "rg0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
start containerd containerd --config "$conf/containerd.toml"
wait_for containerd 60 ctr --address "$cri_sock" version

# The sandbox image: made from Debian's static catatonit, since no registry is reachable.
if ! ctr --address "$cri_sock" -n k8s.io images check "name==$PAUSE_IMAGE" | grep -q complete; then
    [[ -x /usr/bin/catatonit ]] || die "/usr/bin/catatonit missing; run 'make deps'"
    python3 "$here/image_archive.py" --tag "$PAUSE_IMAGE" --user 65535:65535 \
        --file /usr/bin/catatonit:/catatonit --output "$state/pause.tar" -- /catatonit -P
    ctr --address "$cri_sock" -n k8s.io images import "$state/pause.tar" >/dev/null
    log "imported $PAUSE_IMAGE (catatonit -P)"
fi

# Pod-to-service traffic crosses the bridge; iptables must see it for kube-proxy's rules.
sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1 || true

# --- kubelet. cgroup v1 + cgroupfs; image GC and disk eviction effectively off, because images
# cannot be pulled back once collected (there is no registry).
write_file "$conf/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: "unix://$cri_sock"
clusterDomain: cluster.local
failSwapOn: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
# 250 pods: the benchmark's 100 replicas surge beside everyone's tests (110, the default, did
# not hold 97). The pod range is a /24: 253 addresses for pods.
maxPods: 250
YAML
start_kubelet() {
    start kubelet "$k8s_bin/kubelet" --config="$conf/kubelet.yaml" \
        --kubeconfig="$conf/kubelet.kubeconfig" --root-dir="$state/kubelet" \
        --hostname-override="$node" --node-ip="$node_ip"
}
start_kubelet

write_file "$conf/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: "$POD_CIDR"
hostnameOverride: "$node"
clientConnection: {kubeconfig: "$conf/kube-proxy.kubeconfig"}
# Leave the host's conntrack sysctls alone: they cannot always be written in a VM.
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
nodePortAddresses: ["primary"]
YAML
start kube-proxy "$k8s_bin/kube-proxy" --config="$conf/kube-proxy.yaml"

admin=(kubectl --kubeconfig "$conf/admin.kubeconfig")
# The node object may still say Ready from before a restart: ask the kubelet itself first.
# containerd answers `ctr version` before its CRI service has restored the containers of a previous
# run; a kubelet started then exits ("server is not initialized yet"). Start it again until it stays.
kubelet_deadline=$((SECONDS + 120))
until curl -fsS http://127.0.0.1:10248/healthz >/dev/null 2>&1; do
    if ! pid_alive kubelet; then
        if ((SECONDS >= kubelet_deadline)) || ! tail -n 5 "$logs/kubelet.log" | grep -q "not initialized yet"; then
            log "kubelet exited; last lines of $logs/kubelet.log:"
            tail -n 20 "$logs/kubelet.log" >&2 || true
            die "kubelet did not start"
        fi
        log "kubelet exited while containerd's CRI service was still starting; starting it again"
        sleep 2
        start_kubelet
    elif ((SECONDS >= kubelet_deadline)); then
        tail -n 20 "$logs/kubelet.log" >&2 || true
        die "kubelet did not become healthy within 120s"
    fi
    sleep 0.5
done
wait_for kubelet 120 "${admin[@]}" wait --for=condition=Ready "node/$node" --timeout=2s
wait_for kube-proxy 60 curl -fsS http://127.0.0.1:10256/healthz
wait_for kube-controller-manager 60 "${admin[@]}" get serviceaccount default -n default

mkdir -p "$repo/.cluster"
cp "$conf/admin.kubeconfig" "$repo/.cluster/kubeconfig"
log "cluster up in $((SECONDS - t0)) s: node $node ($node_ip), Kubernetes $K8S_VERSION"
cat <<MSG
  export KUBECONFIG=$repo/.cluster/kubeconfig   # context 'local'
  export PATH=$k8s_bin:\$PATH                    # kubectl $K8S_VERSION
  kubectl get nodes
MSG
