#!/usr/bin/env bash
# The long power-loss test (docs/reliability.md, "Power loss"), on a
# Release build: CUTS power cuts (default 100) under load with --sync full,
# every other one keeping half of the unsynced pages; then --sync none
# measured twice: 10 cuts that drop every unsynced write, and RUNS fresh
# runs (default 20) of one cut that keeps half of them, counting the runs
# that leave a store whose tables disagree. The --sync full run fails on
# any lost write; the --sync none runs print what they lost.
# Usage: scripts/soak-powerloss.sh [CUTS] [SEED] [RUNS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cuts=${1:-100}
seed=${2:-0}
runs=${3:-20}
cd "$top"
./scripts/build-soak.sh powerloss_test hopperd powerloss_shim powerloss_cut
test=build/soak/tests/integration/powerloss_test
if [ "$seed" -eq 0 ]; then
    seed=$(date +%s)
fi

echo "soak-powerloss: $cuts cuts with --sync full (seed $seed)"
HOPPER_POWERLOSS_CUTS=$cuts HOPPER_POWERLOSS_SEED=$seed "$test"

echo "soak-powerloss: 10 cuts with --sync none, unsynced writes dropped"
HOPPER_POWERLOSS_SYNC=none HOPPER_POWERLOSS_CUTS=10 \
    HOPPER_POWERLOSS_SEED=$seed "$test"

echo "soak-powerloss: $runs runs of one --sync none cut keeping 50% of" \
    "the unsynced pages"
damaged=0
for i in $(seq "$runs"); do
    out=$(HOPPER_POWERLOSS_SYNC=none HOPPER_POWERLOSS_CUTS=1 \
        HOPPER_POWERLOSS_KEEP_PCT=50 HOPPER_POWERLOSS_SEED=$((seed + i)) \
        "$test" | grep '^powerloss_test:')
    echo "$out"
    case $out in *damaged*) damaged=$((damaged + 1)) ;; esac
done
echo "soak-powerloss: --sync none, half the unsynced pages kept:" \
    "$damaged of $runs stores damaged"
