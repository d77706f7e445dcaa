#!/usr/bin/env bash
# Builds the optimised store benchmark and runs it; extra arguments go to
# store_bench (e.g. --sync none --backlogs 1000,1000000 --seconds 3).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/build-release.sh store_bench
exec ./build/release/tests/bench/store_bench "$@"
