#!/usr/bin/env bash
# Builds helm from the Go module proxy into a cache keyed by version (a second run builds
# nothing). The gate renders Helm chart sources with `helm template`; the benchmark compares
# with `helm upgrade --wait`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${ROLLOUTGATE_CACHE:-$HOME/.cache/rolloutgate}
bin=$cache/helm/$HELM_VERSION/bin
if [[ -x $bin/helm ]]; then
    echo "build-helm: helm $HELM_VERSION already in $bin"
    exit 0
fi
start=$(date +%s)
mkdir -p "$bin"
GOBIN=$bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
echo "build-helm: helm $HELM_VERSION built into $bin in $(( $(date +%s) - start )) s"
