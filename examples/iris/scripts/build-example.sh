#!/usr/bin/env bash
# Builds the tags of one example model offline, the same way for every example:
#   base  rolloutgate/debian:bookworm-<hash>   debootstrap + docker import   (base-image.sh)
#   deps  rolloutgate/NAME-deps:<hash>         a venv from a wheelhouse (wheels.sh)
#   tags  rolloutgate/NAME:<tag>               one thin layer each: app code and trained model
# Each step is keyed by a hash of its inputs and skipped when its output exists, so a second
# run builds nothing. The example's directory holds requirements.txt, Dockerfile.deps,
# Dockerfile and app/*.py; one without requirements.txt (examples/penguin: the standard library
# only) has no wheelhouse and no deps image: its tags build on the base image.
# Usage: build-example.sh NAME DIR "ALL TAGS" [TAG...]   (default: every tag)
set -euo pipefail
name=$1 dir=$(cd "$2" && pwd)
read -r -a all_tags <<<"$3"
shift 3
export log_name=$name-images
source "$(dirname "$0")/lib.sh"

tags=("${@:-${all_tags[@]}}")
for t in "${tags[@]}"; do
    [[ " ${all_tags[*]} " == *" $t "* ]] || die "unknown tag '$t'; known: ${all_tags[*]}"
done

docker info >/dev/null 2>&1 || die "docker is not running; start it with devcluster/docker-up.sh"
# The legacy builder: this docker has no buildx, and nothing here needs BuildKit.
export DOCKER_BUILDKIT=0
logs=$cache/logs/$name
mkdir -p "$logs"
t0=$SECONDS

base=$(bash "$iris_dir/scripts/base-image.sh")

# Prints the image the tags build on: the deps image, built first when it does not exist.
deps_image() {
    if [[ ! -f $dir/requirements.txt ]]; then
        echo "$base"
        return
    fi
    local house deps_key deps ctx
    house=$(bash "$iris_dir/scripts/wheels.sh" "$dir/requirements.txt")
    deps_key=$( (echo "$base"; cat "$dir/requirements.txt" "$dir/Dockerfile.deps") \
        | sha256sum | cut -c1-12)
    deps=rolloutgate/$name-deps:$deps_key
    if image_exists "$deps"; then
        log "deps image $deps exists"
    else
        ctx=$(mktemp -d "$cache/context.XXXXXX")
        trap 'rm -rf "$ctx"' EXIT
        # Hard links when the cache and the context share a file system, copies otherwise.
        cp -rl "$house" "$ctx/wheels" 2>/dev/null || cp -r "$house" "$ctx/wheels"
        cp "$dir/requirements.txt" "$dir/Dockerfile.deps" "$ctx/"
        log "building $deps"
        docker build --network=none -f "$ctx/Dockerfile.deps" --build-arg "BASE=$base" \
            -t "$deps" "$ctx" >"$logs/deps.log" 2>&1 \
            || { tail -n 30 "$logs/deps.log" >&2; die "building $deps failed (log: $logs/deps.log)"; }
        rm -rf "$ctx"
        trap - EXIT
    fi
    echo "$deps"
}
deps=$(deps_image)

# A tag is up to date when its label records the same inputs: deps image, app code, Dockerfile.
app_key=$( (echo "$deps"; cat "$dir/Dockerfile" "$dir"/app/*.py) | sha256sum | cut -c1-12)
for tag in "${tags[@]}"; do
    image=rolloutgate/$name:$tag
    have=$(docker image inspect -f '{{ index .Config.Labels "rolloutgate.build-key" }}' "$image" \
        2>/dev/null || true)
    if [[ $have == "$app_key" ]]; then
        log "$image is up to date"
        continue
    fi
    log "building $image"
    docker build --network=none -f "$dir/Dockerfile" \
        --build-arg "DEPS=$deps" --build-arg "VARIANT=$tag" \
        --label "rolloutgate.build-key=$app_key" -t "$image" "$dir" >"$logs/$tag.log" 2>&1 \
        || { tail -n 30 "$logs/$tag.log" >&2; die "building $image failed (log: $logs/$tag.log)"; }
    grep -h '^trained ' "$logs/$tag.log" | sed 's/^/  /' >&2 || true
done

log "done in $((SECONDS - t0)) s:"
docker images --format '  {{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E "rolloutgate/$name:|$deps|$base" >&2 || true
