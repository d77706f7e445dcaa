#!/usr/bin/env bash
# An idle broker writes nothing. After some traffic leaves work due later
# (a delayed message, a held lease, a delivered message kept for its
# retention, a dedupe window, request ids in the replay cache), hopperd is
# left alone for a few seconds and must make no commit: the commit
# counters in /metrics and LMDB's last transaction id stay where they
# were. The idle time is a long-poll claim on an empty lane, answered by
# the broker's own timer; nothing here depends on how long it takes.
#   idle_test.sh HOPPERD HOPPER
set -euo pipefail
hopperd=$1
hopper=$2
# shellcheck source=tests/integration/lib_hopperd.sh
. "$(dirname "$0")/lib_hopperd.sh"
test_begin
cli() { "$hopper" --url "$url" "$@"; }
scrape() {
    curl -sf -o "$work/metrics" "$http/metrics" || fail "cannot scrape $http"
}
# metric SERIES: the value of that sample in the last scrape.
metric() { awk -v s="$1" 'index($0, s " ") == 1 { print $2 }' "$work/metrics"; }
txn_id() { mdb_stat -e "$work/data" | awk '/Last transaction ID/ { print $4 }'; }

hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
    --listen tcp://127.0.0.1:0 --http 127.0.0.1:0 --data "$work/data" \
    --log-level warn || fail "hopperd did not start: $(cat "$work/hopperd.err")"
url=$hopperd_url http=$hopperd_http

cli enqueue later --delay 1h 'not yet' > /dev/null
cli enqueue held 'kept under a lease' > /dev/null
cli enqueue acked 'delivered, kept for the retention' > /dev/null
cli enqueue once --dedupe key-1 'dedupe window open' > /dev/null
cli --json claim held --lease 1h > /dev/null
cli --json claim acked > "$work/claimed"
cli ack "$(jq -r .id "$work/claimed")" "$(jq -r .token "$work/claimed")" \
    > /dev/null

scrape
commits=$(metric hopper_commit_group_size_count)
syncs=$(metric hopper_commit_sync_seconds_count)
txn=$(txn_id)
if [ "${commits:-0}" -lt 6 ] || [ -z "$txn" ]; then
    fail "the traffic made $commits commits, LMDB transaction '$txn'"
fi
ok

# Idle: hopperd's old maintenance beat committed about once a second here.
rc=0
cli claim nothing-here --wait 3s > "$work/idle.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "the idle long-poll exited $rc: $(cat "$work/idle.out")"
ok

scrape
got=$(metric hopper_commit_group_size_count)
[ "$got" = "$commits" ] || fail "idle hopperd made $((got - commits)) commits"
ok
got=$(metric hopper_commit_sync_seconds_count)
[ "$got" = "$syncs" ] || fail "idle hopperd synced $((got - syncs)) times"
ok
got=$(txn_id)
[ "$got" = "$txn" ] || fail "LMDB's last transaction went from $txn to $got"
ok

hopperd_stop || exit 1
ok
echo "$passed passed, 0 failed"
