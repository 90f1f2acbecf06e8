#!/usr/bin/env bash
# Builds (first run: a few minutes) and runs regtoken, installing the build's system libraries
# when missing. Usage: bash scripts/regtoken.sh token-add --readwrite --description demo ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --product regtoken >&2
exec .build/debug/regtoken "$@"
