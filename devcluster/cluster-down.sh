#!/usr/bin/env bash
# Stops every process cluster-up started (by pid file, never by name), stops the pods through the
# CRI so their network is torn down, and removes the CNI, iptables and mount state the cluster
# added. etcd data, certificates and the image store are kept; `make cluster-clean` removes them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

run=/run/rolloutgate
cri_sock=$run/containerd/containerd.sock

# stop NAME: SIGTERM the recorded pid, SIGKILL after a grace period.
stop() {
    local name=$1 pid deadline
    if pid_alive "$name"; then
        pid=$(pid_of "$name")
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 20))
        while [[ -d /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.2; done
        if [[ -d /proc/$pid ]]; then
            log "$name (pid $pid) ignored SIGTERM for 20 s; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$pids/$name.pid"
}

for c in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver; do stop "$c"; done

# Pods outlive the kubelet (their shims belong to containerd). Stopping sandboxes through the CRI
# runs CNI DEL for each, so veths and IP allocations are released properly.
if pid_alive containerd; then
    crictl=(crictl --runtime-endpoint "unix://$cri_sock" --timeout 30s)
    if [[ -x $k8s_bin/crictl ]]; then
        crictl[0]=$k8s_bin/crictl
        for p in $("${crictl[@]}" pods -q 2>/dev/null); do
            "${crictl[@]}" stopp "$p" >/dev/null 2>&1 || log "could not stop pod sandbox $p"
            "${crictl[@]}" rmp -f "$p" >/dev/null 2>&1 || true
        done
    fi
    # Whatever is left (no crictl, or a sandbox the CRI could not stop): kill its task directly.
    ctr=(ctr --address "$cri_sock" -n k8s.io)
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
        "${ctr[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
        "${ctr[@]}" tasks delete -f "$t" >/dev/null 2>&1 || true
    done
fi
stop containerd
stop etcd

# Mounts the kubelet and the CRI made (projected tokens, sandbox /dev/shm, network namespaces).
for root in "$state/kubelet" "$run"; do
    { grep -o " $root/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
done
# The kubelet bind-mounts its root directory onto itself (to make it shared); without this,
# `make cluster-clean` cannot remove it ("Device or resource busy").
if mountpoint -q "$state/kubelet"; then umount -l "$state/kubelet" || true; fi
for ns in /run/netns/cni-*; do
    [[ -e $ns ]] || continue
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
done

# Network state: the bridge, kube-proxy's rules (its own --cleanup) and the CNI plugins' chains.
ip link delete rg0 2>/dev/null || true
if [[ -x $k8s_bin/kube-proxy ]]; then
    "$k8s_bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
fi
for table in nat filter; do
    if iptables-save -t "$table" | grep -q 'CNI-'; then
        iptables-save -t "$table" | grep -v 'CNI-' | iptables-restore -T "$table"
    fi
done
rm -rf "$state/cni/ipam" "$run"

left=$(pgrep -f -- "$cri_sock|$k8s_bin/|$state/conf/" || true)
if [[ -n $left ]]; then
    die "processes of the cluster still running: $(echo $left)"
fi
log "cluster down"
