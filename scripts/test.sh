#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 clone:
# installs missing packages, builds with AddressSanitizer + UBSan (warnings
# are errors), also compiles the optimised build (which sees warnings -O0
# misses), then runs the whole ctest suite, then a short libFuzzer run of
# each fuzz target (clang-14, build/fuzz; see scripts/fuzz.sh --smoke).
#
#   ./scripts/test.sh            everything
#   ./scripts/test.sh -L unit    extra arguments go to ctest
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/setup.sh

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
