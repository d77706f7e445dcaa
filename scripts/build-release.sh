#!/usr/bin/env bash
# Installs what is missing and builds the optimised tree build/release
# (no tests), all of it or only the named targets. The scripts that run
# something optimised (run.sh, bench.sh, bench-store.sh, restart-backlog.sh)
# start here, so they all configure build/release the same way.
#   ./scripts/build-release.sh [TARGET...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DHOPPER_TESTS=OFF >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build/release -j "$(nproc)" "${targets[@]}"
