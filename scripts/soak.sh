#!/usr/bin/env bash
# The long crash test (docs/reliability.md): hopperd killed with SIGKILL
# CYCLES times (default 100) under load and restarted on the same data,
# first with --sync full, then with --sync none, on a Release build. Each
# run prints its figures and fails on any lost, duplicated or early message.
# Usage: scripts/soak.sh [CYCLES] [SEED]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cycles=${1:-100}
seed=${2:-0}
cd "$top"
./scripts/build-soak.sh crash_test hopperd
for sync in full none; do
    echo "soak: $cycles kills with --sync $sync"
    HOPPER_CRASH_CYCLES=$cycles HOPPER_CRASH_SYNC=$sync \
        HOPPER_CRASH_SEED=$seed build/soak/tests/integration/crash_test
done
