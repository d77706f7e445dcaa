#!/usr/bin/env bash
# hopperd --http: /healthz, /readyz and /metrics against a real broker.
# The scrape must pass `promtool check metrics` and show what the traffic
# did (lane states and totals, requests by method and code, commits);
# --metrics-max-lanes caps the lanes exported; --sync none shows a writable
# map; bad or busy addresses stop hopperd with a clear message.
#   http_test.sh HOPPERD HOPPER
set -euo pipefail
hopperd=$1
hopper=$2
. "$(dirname "$0")/lib_hopperd.sh"
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); }

# start ARGS...: hopperd on free ports; sets pid, url, http.
start() {
    local rc=0
    hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
        --listen tcp://127.0.0.1:0 --http 127.0.0.1:0 \
        --data "$work/data" --log-level warn "$@" || rc=$?
    pid=$hopperd_pid url=$hopperd_url http=$hopperd_http
    [ "$rc" -eq 0 ] || fail "hopperd did not start: $(cat "$work/hopperd.err")"
    [ -n "$http" ] || fail "hopperd printed no http URL"
}
stop() {
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=""
    [ "$rc" -eq 0 ] || fail "hopperd exited $rc: $(cat "$work/hopperd.err")"
}
cli() { "$hopper" --url "$url" "$@"; }
# get PATH: the status code, body in $work/body.
get() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
# metric SERIES: the value of the sample line that starts with SERIES.
metric() { awk -v s="$1" 'index($0, s " ") == 1 { print $2; exit }' "$work/m"; }
scrape() {
    [ "$(get "$http/metrics")" = 200 ] || fail "/metrics: $(cat "$work/body")"
    mv "$work/body" "$work/m"
}
expect() {
    local got
    got=$(metric "$1")
    [ "$got" = "$2" ] || fail "$1 is '$got', wanted $2"
    ok
}

start
case "$http" in
http://127.0.0.1:*) ;;
*) fail "http on '$http', not on 127.0.0.1" ;;
esac

# ---- health, readiness, unknown paths -----------------------------------
[ "$(get "$http/healthz")" = 200 ] && grep -qx ok "$work/body" || fail healthz
ok
[ "$(get "$http/readyz")" = 200 ] && grep -qx ready "$work/body" || fail readyz
ok
[ "$(get "$http/nope")" = 404 ] || fail "unknown path not 404"; ok
[ "$(get -X POST "$http/metrics")" = 405 ] || fail "POST not 405"; ok
headers=$(curl -s -D - -o /dev/null "$http/metrics")
grep -qi '^content-type: text/plain; version=0.0.4' <<< "$headers" ||
    fail "content type: $headers"
ok

# ---- traffic ------------------------------------------------------------
for i in 1 2 3; do cli enqueue jobs "j$i" > /dev/null; done
cli enqueue mail m1 > /dev/null
cli enqueue mail m2 --delay 1h > /dev/null
cli --json claim jobs --max 2 > "$work/claimed"
id=$(jq -r -s '.[0].id' "$work/claimed")
tok=$(jq -r -s '.[0].token' "$work/claimed")
cli ack "$id" "$tok" > /dev/null
rc=0
cli enqueue 'bad lane!' x > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a bad lane name was accepted"

scrape
promtool check metrics < "$work/m" > "$work/lint" 2>&1 ||
    fail "promtool: $(cat "$work/lint")"
ok
expect 'hopper_lane_messages{scope="default",lane="jobs",state="pending"}' 1
expect 'hopper_lane_messages{scope="default",lane="jobs",state="claimed"}' 1
expect 'hopper_lane_messages{scope="default",lane="jobs",state="delivered"}' 1
expect 'hopper_lane_messages{scope="default",lane="mail",state="delayed"}' 1
expect 'hopper_lane_enqueued_total{scope="default",lane="jobs"}' 3
expect 'hopper_lane_claimed_total{scope="default",lane="jobs"}' 2
expect 'hopper_lane_acked_total{scope="default",lane="jobs"}' 1
expect 'hopper_requests_total{method="Enqueue",code="OK"}' 5
expect 'hopper_requests_total{method="Enqueue",code="INVALID_ARGUMENT"}' 1
expect 'hopper_requests_total{method="Ack",code="OK"}' 1
expect 'hopper_request_duration_seconds_count{method="Enqueue"}' 6
expect 'hopper_lanes_exported' 2
expect 'hopper_lanes_truncated' 0
expect 'hopper_commit_failures_total' 0
expect 'hopper_parked_claims' 0
expect 'hopper_map_writable' 0
age=$(metric 'hopper_lane_oldest_pending_age_seconds{scope="default",lane="jobs"}')
awk -v a="$age" 'BEGIN { exit !(a > 0 && a < 600) }' || fail "oldest age $age"
ok
commits=$(metric hopper_commit_group_size_count)
[ "${commits:-0}" -ge 6 ] || fail "commits $commits"; ok
sync=$(metric hopper_commit_sync_seconds_count)
[ "$sync" -ge "$commits" ] || fail "sync count $sync < commits $commits"; ok
inf=$(metric 'hopper_commit_sync_seconds_bucket{le="+Inf"}')
[ "$inf" = "$sync" ] || fail "+Inf bucket $inf != count $sync"; ok
limit=$(metric hopper_map_limit_bytes)
used=$(metric hopper_map_used_bytes)
awk -v u="$used" -v l="$limit" 'BEGIN { exit !(u > 0 && u < l) }' ||
    fail "map used $used limit $limit"
ok

# A parked long-poll and an open connection show while they last.
cli claim idle --wait 3000 > /dev/null &
waiter=$!
for _ in $(seq 100); do
    scrape
    [ "$(metric hopper_parked_claims)" = 1 ] && break
    sleep 0.05
done
expect hopper_parked_claims 1
conns=$(metric hopper_connections)
[ "$conns" -ge 1 ] || fail "connections $conns with a claim parked"; ok
wait "$waiter" || true
stop

# ---- the lane cap -------------------------------------------------------
start --metrics-max-lanes 1
scrape
expect hopper_lanes_exported 1
expect hopper_lanes_truncated 1
grep -q 'lane="mail"' "$work/m" && fail "a lane beyond the cap was exported"
ok
# What survived the restart is counted again from the store.
expect 'hopper_lane_acked_total{scope="default",lane="jobs"}' 1
stop

# ---- bad and busy addresses ---------------------------------------------
bad_start() {
    local want=$1 rc=0
    shift
    "$hopperd" --listen tcp://127.0.0.1:0 --data "$work/data2" "$@" \
        > "$work/o" 2> "$work/e" || rc=$?
    [ "$rc" -ne 0 ] || fail "hopperd $* started"
    grep -qF -- "$want" "$work/e" || fail "hopperd $*: $(cat "$work/e")"
    ok
}
bad_start "want HOST:PORT" --http http://127.0.0.1:1/x
bad_start "must be 1-100000" --http 127.0.0.1:0 --metrics-max-lanes 0
bad_start "must be 1-100000" --http 127.0.0.1:0 --metrics-max-lanes 100001
"$hopperd" --metrics-max-lanes 100000 --print-config |
    grep -qx 'metrics-max-lanes = 100000' || fail "the lane cap's upper limit"
ok
start --sync none
scrape
expect 'hopper_map_writable' 1
port=${http##*:}
bad_start "address already in use" --http "127.0.0.1:$port"
stop
"$hopperd" --http 127.0.0.1:7451 --print-config | grep -qx 'http = 127.0.0.1:7451' ||
    fail "--print-config does not show http"
ok
HOPPER_HTTP=127.0.0.1:7452 "$hopperd" --print-config |
    grep -qx 'http = 127.0.0.1:7452' || fail "HOPPER_HTTP"
ok

echo "$passed passed, 0 failed"
