#!/usr/bin/env bash
# Says which components of the local cluster run, and the node's state when the API answers.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# Exit status: 0 all components run, 3 none, 1 some (a broken cluster: cluster-up repairs it).
cluster=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
up=0
for c in "${cluster[@]}" dockerd; do
    if pid_alive "$c"; then
        printf '%-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
        [[ $c == dockerd ]] || up=$((up + 1))
    else
        printf '%-24s stopped\n' "$c"
    fi
done
if pid_alive kube-apiserver; then
    "$k8s_bin/kubectl" --kubeconfig "$state/conf/admin.kubeconfig" get nodes -o wide 2>&1
fi
((up == ${#cluster[@]})) && exit 0
((up == 0)) && exit 3
exit 1
