#!/usr/bin/env bash
# Long versions of the fault tests (docs/reliability.md, "Faults") on the
# release build: the stale-reader plateau under steady load for SECONDS
# (default 600), the restart test on a 1,000,000-message backlog, then
# every other fault test once. Usage: scripts/soak-faults.sh [SECONDS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
cd "$top"
./scripts/build-soak.sh
it=build/soak/tests/integration
# Run directly: ctest would stop them at their default-run TIMEOUT.
HOPPER_SOAK_SECONDS=$secs "$it/fault_readers_test"
HOPPER_BACKLOG=1000000 "$it/fault_restart_test"
ctest --test-dir build/soak --output-on-failure \
    -R '^fault_' -E '^fault_(readers|restart)_test$'
