#!/usr/bin/env bash
# Builds the optimised broker, CLI, libhopper and hopper-bench and runs the
# broker benchmark (docs/benchmarks.md). Extra arguments go to hopper-bench:
#   ./scripts/bench.sh                 # W1-W5 (a few minutes)
#   ./scripts/bench.sh --long          # adds the 1e7 backlogs
#   ./scripts/bench.sh --json --only W2
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/build-release.sh hopperd hopper_bench backlog_build
exec ./build/release/clients/bench/hopper-bench "$@"
