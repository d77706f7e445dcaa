#!/usr/bin/env bash
# The transport floors of docs/benchmarks.md: echo round trips of 300-byte
# requests over loopback, 1 and 8 client threads, with Hopper's own SP
# code, NNG and plain blocking sockets on each side (tests/bench/sp_floor.c).
# Prints one Markdown row per pair; run it on a quiet machine, and compare
# rows of one run only.
#   ./scripts/bench-transport.sh [N per thread, default 20000]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
n=${1:-20000}
./scripts/build-release.sh sp_floor > /dev/null
bin=$top/build/release/tests/bench/sp_floor
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; fi; }
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pair SERVER CLIENT LABEL
pair() {
    local port
    port=$(free_port)
    "$bin" server "$1" "$port" 2> /dev/null &
    pid=$!
    for _ in $(seq 200); do
        if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then break; fi
        sleep 0.05
    done
    local one eight
    one=$("$bin" client "$2" "$port" 1 "$n")
    eight=$("$bin" client "$2" "$port" 8 "$((n / 4))")
    kill "$pid"
    wait "$pid" 2> /dev/null || true
    pid=""
    # rate=R p50_us=P ... -> "P | R" for one thread, "R" for eight
    local p1 r1 r8
    p1=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<< "$one")
    r1=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<< "$one")
    r8=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<< "$eight")
    printf '| %s | %s µs | %s / %s req/s |\n' "$3" "$p1" "$r1" "$r8"
}

echo "| client -> server | p50, 1 thread | rate, 1 / 8 threads |"
echo "|---|---:|---:|"
pair raw raw "plain sockets -> plain sockets (the floor)"
pair hopper raw "plain sockets -> hopperd's listener"
pair hopper-envelope hopper "libhopper -> hopperd's listener (with the envelope)"
pair hopper nng "NNG req0 -> hopperd's listener"
pair nng nng "NNG req0 -> NNG rep0 (what Hopper used before)"
