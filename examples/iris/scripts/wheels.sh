#!/usr/bin/env bash
# Fills the wheelhouse ~/.cache/rolloutgate/wheels/<hash of requirements.txt>/ with the pinned
# wheels for the image (CPython 3.11, x86_64 glibc), so the image build itself needs no network.
# Prints the wheelhouse path. A complete wheelhouse is reused as is.
# Usage: wheels.sh [REQUIREMENTS]   (default: the iris requirements.txt)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# pip itself is only the installer: run from its wheel during the build, never installed.
pip_pin=pip==26.3
req=${1:-$iris_dir/requirements.txt}
key=$( (cat "$req"; echo "$pip_pin") | sha256sum | cut -c1-12)
house=$cache/wheels/$key

if [[ -f $house/.complete ]]; then
    log "wheelhouse $house is complete"
    echo "$house"
    exit 0
fi

command -v pip >/dev/null || die "pip not found on the host; it downloads the wheels for the image"
mkdir -p "$house"
log "downloading wheels into $house"
platforms=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${p}_x86_64")
done
# The image's python3 is Debian bookworm's 3.11 (glibc 2.36): ask for exactly its wheels,
# whatever Python runs pip here. --no-deps: requirements.txt is already the full closure.
timeout 900 pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    "${platforms[@]}" --platform any -d "$house" -r "$req" "$pip_pin" \
    || die "pip download failed; check that PyPI answers (pip config, PIP_CERT) and the pins in $req exist"
touch "$house/.complete"
echo "$house"
