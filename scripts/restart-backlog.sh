#!/usr/bin/env bash
# Measures how soon hopperd serves after a restart on a large backlog: the
# backlog (default 1,000,000 messages of 100 bytes) is written straight
# into a temp data dir with backlog_build, then hopperd (release build) is
# started on it and, once it says it listens, the hopper CLI claims. Prints
# for each of RUNS restarts (default 5) the time from starting hopperd to
# its "listening" line and to the first successful claim (which includes
# starting the CLI process). Usage: scripts/restart-backlog.sh [N] [RUNS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
runs=${2:-5}
cd "$top"
./scripts/build-release.sh hopperd hopper_cli backlog_build >/dev/null
bin=build/release
dir=$(mktemp -d /tmp/hopper-backlog-XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
"$bin/tests/bench/backlog_build" "$dir/data" "$n"
echo "data.mdb: $(du -h "$dir/data/data.mdb" | cut -f1)"
port=$((20000 + RANDOM % 20000))
url="tcp://127.0.0.1:$port"
for run in $(seq 1 "$runs"); do
    out="$dir/hopperd.out"
    : >"$out"
    t0=$(date +%s%N)
    "$bin/src/broker/hopperd" --listen "$url" --data "$dir/data" \
        --log-level warn >"$out" &
    pid=$!
    until grep -q "data in" "$out"; do
        kill -0 "$pid"
    done
    t1=$(date +%s%N)
    until "$bin/clients/cli/hopper" --url "$url" claim backlog --lease 60000 \
        >/dev/null 2>&1; do
        kill -0 "$pid"
    done
    t2=$(date +%s%N)
    echo "run $run: $n pending; listening after $(( (t1 - t0) / 1000000 )) ms," \
        "first successful claim after $(( (t2 - t0) / 1000000 )) ms"
    kill "$pid"
    wait "$pid" || true
    pid=
done
