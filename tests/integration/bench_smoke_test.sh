#!/usr/bin/env bash
# hopper-bench --quick runs every workload end to end against hopperd it
# starts itself and reports sane figures. No speed is asserted: only that
# each workload moved its messages without an error and that the broker
# figures (commits, memory) were read.
#   bench_smoke_test.sh HOPPER_BENCH HOPPERD BACKLOG_BUILD
set -euo pipefail
bench=$1
hopperd=$2
backlog=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bench" --quick --json --max-seconds 60 --hopperd "$hopperd" \
    --backlog-build "$backlog" --dir "$work" > "$work/out.json" 2> "$work/err" ||
    { echo "FAIL: hopper-bench exited $?: $(cat "$work/err")"; exit 1; }
out=$work/out.json
check() {
    jq -e "$1" "$out" > /dev/null || { echo "FAIL: $2"; jq . "$out"; exit 1; }
}
check '.fsync_floor.n > 0 and .fsync_floor.p50_us > 0' "no fsync floor"
check '[.workloads[].name] | length == 15' "not every quick workload ran"
check 'all(.workloads[]; .errors == 0)' "a workload had errors"
check 'all(.workloads[]; .cut == false)' "a workload was cut by --max-seconds"
check 'all(.workloads[] | select(.name | startswith("W5") | not);
           .messages > 0 and .rate > 0 and .commits > 0
           and .broker_rss_peak_kb > 0)' "a workload moved nothing"
check 'all(.workloads[] | select(.name | test("^(W1|H1)"));
           .messages == 5000)' "W1 or H1 did not enqueue 5,000"
check 'all(.workloads[] | select(.name | startswith("H2"));
           .messages == 5000)' "H2 did not claim and ack 5,000 over HTTP"
check '.workloads[] | select(.name == "W1-produce-batch100") |
           .msgs_per_commit >= 50' "batch 100 was not one commit per request"
check '.workloads[] | select(.name == "W3-latency") |
           .p50_ms > 0 and .p99_ms >= .p50_ms and .p999_ms >= .p99_ms' \
    "W3 latency quantiles"
check '.workloads[] | select(.name == "W5-restart-1e6") | .value_ms > 0' \
    "W5 restart time"
echo "hopper-bench --quick: $(jq -r '[.workloads[] | "\(.name) \(.rate | floor)"] | join(", ")' "$out")"
