#!/usr/bin/env bash
# Builds every rolloutgate/penguin tag offline with the examples' one builder
# (examples/iris/scripts/build-example.sh): no requirements, so no wheels and no deps image.
# Usage: images.sh [TAG...]   (default: every tag)
set -euo pipefail
here=$(dirname "$0")
exec bash "$here/../../iris/scripts/build-example.sh" penguin "$here/.." \
    "v1 v2 crash unready wrong slow hang" "$@"
