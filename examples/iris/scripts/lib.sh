# Shared helpers for the example image scripts (iris, and wine's). Sourced, not run.
# shellcheck shell=bash

iris_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Expensive downloads live outside the repo so a second `make images` rebuilds nothing.
cache=${ROLLOUTGATE_CACHE:-$HOME/.cache/rolloutgate}

# Other examples (examples/wine) source this file too and set log_name first.
log_name=${log_name:-iris-images}
log() { echo "$log_name: $*" >&2; }
die() { echo "$log_name: error: $*" >&2; exit 1; }


# The Debian mirror this machine's apt uses, read at run time so no host name is committed.
debian_mirror() {
    local src=/etc/apt/sources.list.d/debian.sources uri
    [[ -r $src ]] || die "cannot read $src to find the Debian mirror; set DEBIAN_MIRROR=<url>"
    uri=$(awk '/^URIs:/{u=$2} /^Suites:/{if ($2=="bookworm") {print u; exit}}' "$src")
    [[ -n $uri ]] || die "no bookworm stanza with a URIs: line in $src; set DEBIAN_MIRROR=<url>"
    echo "$uri"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
