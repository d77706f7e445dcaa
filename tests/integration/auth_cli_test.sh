#!/usr/bin/env bash
# Tokens end to end: hopperd keygen / token mint / token inspect, and a
# broker started with --auth-keys that lets each token do exactly what it
# grants: UNAUTHENTICATED for a missing, malformed, foreign or expired
# token, PERMISSION_DENIED outside its scopes or permissions.
set -euo pipefail
hopperd=$1
hopper=$2
. "$(dirname "$0")/lib_hopperd.sh"
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }

# run CODE [REASON] -- hopper args...: checks the exit code and, when
# given, the reason word on stderr.
run() {
    local code=$1 reason=$2
    shift 3
    local rc=0
    "$hopper" --url "$url" --timeout 5000 "$@" > "$work/out" 2> "$work/err" || rc=$?
    [ "$rc" -eq "$code" ] || fail "hopper $* exited $rc, wanted $code: $(cat "$work/err")"
    if [ -n "$reason" ]; then
        grep -q " $reason:" "$work/err" || fail "hopper $* did not say $reason: $(cat "$work/err")"
    fi
    passed=$((passed + 1))
}

"$hopperd" keygen --keys "$work/keys" --id k1 > /dev/null
[ "$(stat -c %a "$work/keys")" = 600 ] || fail "key file mode is not 600"
"$hopperd" keygen --keys "$work/other" --id k9 > /dev/null
mint() { "$hopperd" token mint --keys "$work/keys" "$@"; }
producer=$(mint --scope acme --perm produce --ttl 1h)
worker=$(mint --scope acme --perm consume --ttl 1h)
admin=$(mint --scope '*' --perm produce,consume,admin --ttl 1h)
short=$(mint --scope acme --perm produce --ttl 1s)
foreign=$("$hopperd" token mint --keys "$work/other" --scope acme --perm produce)
"$hopperd" token inspect "$producer" > "$work/inspect"
grep -q "^scopes *acme$" "$work/inspect" || fail "inspect: scopes"
grep -q "^perms *produce$" "$work/inspect" || fail "inspect: perms"
if grep -Eq '[0-9a-f]{64}' "$work/inspect"; then fail "inspect shows a key"; fi
passed=$((passed + 1))

acme_admin=$(mint --scope acme --perm admin --ttl 1h)
mkdir "$work/backups"
rc=0
hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
    --data "$work/data" --listen tcp://127.0.0.1:0 --log-level warn \
    --auth-keys "$work/keys" --backup-dir "$work/backups" || rc=$?
pid=$hopperd_pid url=$hopperd_url
[ "$rc" -eq 0 ] || fail "hopperd did not start: $(cat "$work/hopperd.err")"

run 0 "" -- ping
run 6 NO_TOKEN -- --scope acme enqueue jobs hello
run 6 BAD_TOKEN -- --scope acme --token nonsense enqueue jobs hello
run 6 UNKNOWN_KEY -- --scope acme --token "$foreign" enqueue jobs hello
[ "$("$hopper" --url "$url" --scope acme --token "$producer" enqueue jobs hi)" != "" ] || fail "no id"
passed=$((passed + 1))
run 6 NO_PERMISSION -- --scope acme --token "$producer" claim jobs
run 6 NOT_IN_SCOPE -- --scope beta --token "$producer" enqueue jobs hello
run 6 NOT_IN_SCOPE -- --token "$producer" enqueue jobs hello
run 0 "" -- --scope acme --token "$worker" claim jobs
run 6 NO_PERMISSION -- --scope acme --token "$worker" stats jobs
run 6 NO_PERMISSION -- --scope acme --token "$worker" enqueue jobs x
run 0 "" -- --scope acme --token "$admin" stats jobs
run 0 "" -- --scope beta --token "$admin" lanes
# A backup holds every scope: admin on one scope is not enough.
run 6 NEEDS_ALL_SCOPES -- --scope acme --token "$acme_admin" admin backup b1
run 6 NO_PERMISSION -- --scope acme --token "$worker" admin backup b1
run 0 "" -- --token "$admin" admin backup b1
[ -f "$work/backups/b1" ] || fail "admin backup wrote no file"
sleep 1.2
run 6 TOKEN_EXPIRED -- --scope acme --token "$short" enqueue jobs late
# Logs name the failure, never the token.
if grep -qF "$producer" "$work/hopperd.err"; then fail "a token reached the log"; fi
grep -q 'msg="auth failed" method=Enqueue scope=acme reason=TOKEN_EXPIRED' \
    "$work/hopperd.err" || fail "auth failure not logged: $(cat "$work/hopperd.err")"
grep -q 'msg="permission denied" method=Enqueue scope=beta key=k1 reason=NOT_IN_SCOPE' \
    "$work/hopperd.err" || fail "denial not logged: $(cat "$work/hopperd.err")"
passed=$((passed + 1))

# Rotation: add a key, restart; old tokens still work, new ones use k2.
kill -TERM "$pid"; wait "$pid"; pid=""
"$hopperd" keygen --keys "$work/keys" --id k2 --add > /dev/null
# Emptied before the child starts, so that the wait below cannot read the
# last broker's start-up lines (see hopperd_start in lib_hopperd.sh).
: > "$work/hopperd.out"
"$hopperd" --data "$work/data" --listen "$url" --log-level warn \
    --auth-keys "$work/keys" > "$work/hopperd.out" 2>> "$work/hopperd.err" &
pid=$!
for _ in $(seq 600); do grep -q "data in" "$work/hopperd.out" && break; sleep 0.05; done
grep -q "data in" "$work/hopperd.out" ||
    fail "hopperd did not restart: $(cat "$work/hopperd.err")"
newtok=$(mint --scope acme --perm produce --ttl 1h)
"$hopperd" token inspect "$newtok" | grep -q "^key *k2$" || fail "new token not signed by k2"
run 0 "" -- --scope acme --token "$producer" enqueue jobs old
run 0 "" -- --scope acme --token "$newtok" enqueue jobs new
kill -TERM "$pid"; wait "$pid"; pid=""

# A loose key file stops the broker before it listens.
chmod 644 "$work/keys"
rc=0
"$hopperd" --data "$work/data2" --listen tcp://127.0.0.1:0 --auth-keys "$work/keys" \
    > /dev/null 2> "$work/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "chmod 600" "$work/err" || fail "world-readable key file accepted"
passed=$((passed + 1))
echo "$passed passed, 0 failed"
