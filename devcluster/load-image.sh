#!/usr/bin/env bash
# Moves locally built Docker images into containerd's k8s.io namespace, so pods run them with
# imagePullPolicy IfNotPresent or Never. Skips an image whose Docker ID was already imported.
# Usage: load-image.sh IMAGE[:TAG]...
set -euo pipefail
source "$(dirname "$0")/lib.sh"

(($# > 0)) || die "usage: load-image.sh IMAGE[:TAG]... (e.g. make load-image IMAGE=rolloutgate/iris:v1)"
pid_alive containerd || die "containerd is not running; run 'make cluster-up' first"
ctr=(ctr --address /run/rolloutgate/containerd/containerd.sock -n k8s.io)
marks=$state/images
mkdir -p "$marks"

todo=()
for image in "$@"; do
    id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) ||
        die "no Docker image $image; build it first (make images) — 'docker images' lists what exists"
    # Docker's short names live under docker.io/library or docker.io/<user> in containerd.
    ref=$image
    [[ $ref == */* ]] || ref=library/$ref
    [[ ${ref%%/*} == *.* || ${ref%%/*} == *:* || ${ref%%/*} == localhost ]] || ref=docker.io/$ref
    mark=$marks/$(tr '/:' '__' <<<"$image")
    if [[ -f $mark && $(<"$mark") == "$id" ]] && "${ctr[@]}" images ls -q "name==$ref" | grep -q .; then
        log "$image already loaded"
        continue
    fi
    todo+=("$image")
    echo "$id" >"$mark.new"
done
((${#todo[@]} > 0)) || exit 0

t0=$SECONDS
# One archive for all images, so shared base layers are written once.
docker save "${todo[@]}" | "${ctr[@]}" images import - >/dev/null
for image in "${todo[@]}"; do
    mark=$marks/$(tr '/:' '__' <<<"$image")
    mv "$mark.new" "$mark"
done
log "loaded ${todo[*]} in $((SECONDS - t0)) s"
