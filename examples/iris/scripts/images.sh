#!/usr/bin/env bash
# Builds every rolloutgate/iris tag offline (see docs/example-model.md and build-example.sh).
# Usage: images.sh [TAG...]   (default: every tag)
set -euo pipefail
here=$(dirname "$0")
exec bash "$here/build-example.sh" iris "$here/.." "v1 v2 crash unready wrong slow retrained slower heavier hang" "$@"
