#!/usr/bin/env bash
# Builds the optimised store benchmark and runs it; extra arguments go to
# store_bench (e.g. --sync none --backlogs 1000,1000000 --seconds 3).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DHOPPER_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" --target store_bench
exec ./build/release/tests/bench/store_bench "$@"
