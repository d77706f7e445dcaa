#!/usr/bin/env bash
# Installs what is missing and builds build/soak, an optimised tree with
# the tests (build/release has none), all of it or only the named targets.
# The long tests (soak.sh, soak-faults.sh, soak-powerloss.sh) start here,
# so they all configure build/soak the same way.
#   ./scripts/build-soak.sh [TARGET...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/setup.sh
cmake -S . -B build/soak -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DHOPPER_TESTS=ON >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build/soak -j "$(nproc)" "${targets[@]}" >/dev/null
