#!/usr/bin/env bash
# Creates the cluster's CA, certificates and service-account key pair with openssl, once.
# Kept across cluster-down/up so kubeconfigs stay valid; `make cluster-clean` removes them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

pki=$state/pki
node=${NODE_NAME:-$(hostname -s | tr '[:upper:]' '[:lower:]')}
mkdir -p "$pki"
cd "$pki"

if [[ ! -f ca.crt ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=rolloutgate-ca" \
        -keyout ca.key -out ca.crt 2>/dev/null
    log "created CA"
fi

# cert NAME SUBJECT [SAN]: a client or server certificate signed by the CA.
cert() {
    local name=$1 subj=$2 san=${3:-} ext
    [[ -f $name.crt ]] && return 0
    ext=$(mktemp)
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [[ -n $san ]]; then
            echo "extendedKeyUsage=serverAuth,clientAuth"
            echo "subjectAltName=$san"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } >"$ext"
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "$subj" -keyout "$name.key" -out "$name.csr" 2>/dev/null
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
        -extfile "$ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$ext"
    log "created certificate $name ($subj)"
}

# The API server is reached on loopback from the host and on the first service IP from pods.
cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kubelet "/O=system:nodes/CN=system:node:$node"
cert kube-proxy "/CN=system:kube-proxy"

if [[ ! -f sa.key ]]; then
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    log "created service-account key pair"
fi
chmod 600 ./*.key
