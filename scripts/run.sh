#!/usr/bin/env bash
# The one command that takes a fresh Debian 12 clone to a running broker:
# installs missing packages, builds the optimised hopperd and the hopper CLI,
# and runs hopperd in the foreground on its defaults (data in ./data,
# listening on tcp://127.0.0.1:7450). Extra arguments go to hopperd, e.g.
#   ./scripts/run.sh --sync none --listen tcp://127.0.0.1:9000
# Stop it with Ctrl-C (SIGINT) or SIGTERM; it shuts down cleanly.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/build-release.sh
echo "run.sh: the CLI is build/release/clients/cli/hopper" >&2
exec ./build/release/src/broker/hopperd "$@"
