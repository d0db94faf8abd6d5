#!/usr/bin/env bash
# Builds every rolloutgate/wine tag offline, the way examples/iris builds its own (the base
# image, wheelhouse script and builder are iris's: examples/iris/scripts/build-example.sh).
# Usage: images.sh [TAG...]   (default: every tag)
set -euo pipefail
here=$(dirname "$0")
exec bash "$here/../../iris/scripts/build-example.sh" wine "$here/.." "v1 v2 crash unready wrong hang" "$@"
