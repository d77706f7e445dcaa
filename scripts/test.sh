#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 clone:
# installs missing packages, builds with AddressSanitizer + UBSan (warnings
# are errors), also compiles the optimised build (which sees warnings -O0
# misses), then runs the whole ctest suite, then a short libFuzzer run of
# each fuzz target (clang-14, build/fuzz; see scripts/fuzz.sh --smoke).
# The suite includes container_test (docker/smoke.sh): the image built and
# run with Docker, or with podman, which this installs where it is missing.
#
#   ./scripts/test.sh            everything
#   ./scripts/test.sh -L unit    extra arguments go to ctest
#   HOPPER_SKIP_CONTAINER=1 ./scripts/test.sh   all but the container (said
#                                loudly), for quick local runs
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "${HOPPER_SKIP_CONTAINER:-}" = 1 ]; then
    ./scripts/setup.sh build dev
else
    ./scripts/setup.sh build dev container
fi
# container_test's figures (never asserted), or the notice that it was
# skipped: repeated last, whatever happened in between.
summary=$top/build/container-summary.txt
mkdir -p build
rm -f "$summary"
export HOPPER_SMOKE_SUMMARY=$summary
trap 'if [ -f "$summary" ]; then cat "$summary"; fi' EXIT

jobs=$(nproc)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DHOPPER_TESTS=OFF >/dev/null
cmake --build build/release -j "$jobs"

cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHOPPER_SANITIZE=address,undefined >/dev/null
cmake --build build/asan -j "$jobs"

ctest --test-dir build/asan --output-on-failure -j "$jobs" "$@"

# Fuzz smoke: a fixed number of executions of each libFuzzer target over
# its seed corpus, and every saved regression input once.
./scripts/fuzz.sh --smoke
