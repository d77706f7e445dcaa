#!/usr/bin/env bash
# Delivery lanes from the command line (docs/webhooks.md): hopper lane set
# --deliver-url/--secret-id/--deliver-concurrency/--deliver-timeout-ms/
# --callback-timeout are kept and shown, refused with the documented reason words, and turned off
# with an empty url; hopper webhook secret set|rotate store write-only
# secrets that no output and no log line ever shows.
set -euo pipefail
hopperd=$1
hopper=$2
. "$(dirname "$0")/lib_hopperd.sh"
test_begin

# run CODE [REASON] -- hopper args...: checks the exit code and, when
# given, the reason word on stderr.
run() {
    local code=$1 reason=$2
    shift 3
    local rc=0
    "$hopper" --url "$hopperd_url" --timeout 5000 "$@" > "$work/out" 2> "$work/err" || rc=$?
    [ "$rc" -eq "$code" ] || fail "hopper $* exited $rc, wanted $code: $(cat "$work/err")"
    if [ -n "$reason" ]; then
        grep -q "$reason" "$work/err" || fail "hopper $* did not say $reason: $(cat "$work/err")"
    fi
    ok
}

hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
    --data "$work/data" --listen tcp://127.0.0.1:0 --log-level debug \
    --api 127.0.0.1:0 ||
    fail "hopperd did not start: $(cat "$work/hopperd.err")"
api=$(sed -n 's/.* api on \([^ ]*\) .*/\1/p' "$work/hopperd.out")
[ -n "$api" ] || fail "no api line in $(cat "$work/hopperd.out")"

run 0 "" -- --json lane set hooks --deliver-url https://h.example/in \
    --secret-id hook-1 --deliver-concurrency 8 --deliver-timeout-ms 2500
jq -e '.deliver_url == "https://h.example/in" and .secret_id == "hook-1" and
       .deliver_concurrency == 8 and .deliver_timeout_ms == 2500' \
    "$work/out" > /dev/null || fail "lane set shows $(cat "$work/out")"
ok
# Other settings leave the delivery alone.
run 0 "" -- --json lane set hooks --max-attempts 3
jq -e '.deliver_url == "https://h.example/in" and .max_attempts == 3' \
    "$work/out" > /dev/null || fail "max-attempts lost the url: $(cat "$work/out")"
ok
run 0 "" -- lane show hooks
grep -q "^deliver_url *https://h.example/in$" "$work/out" || fail "lane show: $(cat "$work/out")"
ok

run 3 BAD_DELIVER_URL -- lane set hooks --deliver-url ftp://h/
run 3 BAD_DELIVER_URL -- lane set hooks --deliver-url https://u:p@h/
run 3 BAD_SETTING -- lane set plain --deliver-url https://h/
run 3 BAD_NAME -- lane set hooks --secret-id 'a b'
run 3 BAD_SETTING -- lane set hooks --deliver-concurrency 65
run 3 BAD_SETTING -- lane set hooks --deliver-timeout-ms 99
run 3 BAD_SETTING -- lane set hooks --callback-timeout 999
run 3 BAD_SETTING -- lane set hooks --callback-timeout 86400001
run 0 "" -- --json lane set hooks --callback-timeout 1s
jq -e '.callback_timeout_ms == 1000' "$work/out" > /dev/null ||
    fail "callback-timeout 1s shows $(cat "$work/out")"
ok
run 0 "" -- --json lane set hooks --callback-timeout 24h
jq -e '.callback_timeout_ms == 86400000' "$work/out" > /dev/null ||
    fail "callback-timeout 24h shows $(cat "$work/out")"
ok
run 0 "" -- lane set hooks --deliver-concurrency 64 --deliver-timeout-ms 300000
long=https://h/$(head -c 2038 /dev/zero | tr '\0' a)
[ ${#long} -eq 2048 ] || fail "test url is ${#long} bytes"
run 0 "" -- lane set hooks --deliver-url "$long"
run 2 "" -- lane set hooks --deliver-url "${long}a"
# The broker refuses 2049 bytes too, whoever sends them (the HTTP API).
printf '{"lane":"hooks","settings":{"deliver_url":"%s"},"update_mask":["deliver_url"]}' \
    "${long}a" > "$work/req.json"
curl -s -H 'Content-Type: application/json' --data-binary @"$work/req.json" \
    "$api/hopper.v1.Broker/UpdateLane" > "$work/resp" || fail "curl failed"
grep -q BAD_DELIVER_URL "$work/resp" || fail "api took 2049 bytes: $(head -c 300 "$work/resp")"
ok

# An empty url turns delivery off; the lane shows no delivery.
run 0 "" -- --json lane set hooks --deliver-url ''
jq -e 'has("deliver_url") | not' "$work/out" > /dev/null ||
    fail "delivery still on: $(cat "$work/out")"
ok

# ---- secrets ----------------------------------------------------------------
secret=whsec-9f1c2e7a5b3d4c6e8a0b
rotated=whsec-rotated-77e1d2c3b4a5
# run_in CODE REASON INPUT -- args: run with INPUT on stdin.
run_in() {
    local code=$1 reason=$2 input=$3
    shift 4
    local rc=0
    printf '%s' "$input" | "$hopper" --url "$hopperd_url" --timeout 5000 "$@" \
        > "$work/out" 2> "$work/err" || rc=$?
    [ "$rc" -eq "$code" ] || fail "hopper $* exited $rc, wanted $code: $(cat "$work/err")"
    if [ -n "$reason" ]; then
        grep -q "$reason" "$work/err" || fail "hopper $* did not say $reason: $(cat "$work/err")"
    fi
    ok
}
run_in 3 BAD_SECRET short -- webhook secret set hook
run_in 4 NO_SECRET "$secret" -- webhook secret rotate hook
run_in 0 "" "$secret" -- webhook secret set hook
grep -q "^hook 1 active$" "$work/out" || fail "set said $(cat "$work/out")"
ok
run_in 0 "" "$rotated" -- --json webhook secret rotate hook
jq -e '.secret_id == "hook" and .active == 2' "$work/out" > /dev/null ||
    fail "rotate said $(cat "$work/out")"
ok
run_in 3 BAD_NAME "$secret" -- webhook secret set 'bad id'
run 0 "" -- --json lane set hooks --deliver-url https://h.example/in --secret-id hook
run 0 "" -- --json lane show hooks
jq -e '.secret_id == "hook"' "$work/out" > /dev/null || fail "show: $(cat "$work/out")"
ok

# hopper webhook test: a lane without a url, and loopback refused by
# default (this hopperd has no --webhook-allow-private).
run 5 NOT_DELIVERING -- webhook test plain
run 0 "" -- lane set hooks --deliver-url http://127.0.0.1:9/x --secret-id hook
run 0 "" -- --json webhook test hooks
jq -e '.status == 0 and .outcome == "retry" and
       (.error | startswith("address refused: 127.0.0.1 is private"))' \
    "$work/out" > /dev/null || fail "webhook test said $(cat "$work/out")"
ok

hopperd_stop
# Nothing printed or logged a secret, and the store file is the owner's.
for f in "$work"/hopperd.out "$work"/hopperd.err "$work"/out "$work"/err; do
    if grep -qF -e "$secret" -e "$rotated" "$f"; then fail "a secret reached $f"; fi
done
ok
[ "$(stat -c %a "$work/data/data.mdb")" = 600 ] || fail "data.mdb is not 0600"
ok
echo "$passed passed, 0 failed"
