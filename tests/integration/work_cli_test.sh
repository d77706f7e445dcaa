#!/usr/bin/env bash
# hopper work against a real hopperd, with shell scripts as workers: the
# payload on stdin and the message in HOPPER_* variables, exit 0 acks with
# stdout as the result, 75 and other failures nack with stderr's tail,
# --timeout kills an overrunning command, heartbeats keep a command that
# outlives its lease, and SIGTERM drains (the running command's message is
# given back without using an attempt). Waits are for conditions (a file
# a script wrote, a process that exited), bounded generously.
#   work_cli_test.sh HOPPERD HOPPER
# shellcheck disable=SC2016 # the $names in single quotes are the scripts'
set -euo pipefail
hopperd=$1
hopper=$2
# shellcheck source=tests/integration/lib_hopperd.sh
. "$(dirname "$0")/lib_hopperd.sh"
test_begin
bg=""
end() {
    # The command hopper work ran (in a process group of its own), if a
    # failure left it behind.
    if [ -s "$work/started" ]; then
        kill -KILL "$(cat "$work/started")" 2> /dev/null || true
    fi
    if [ -n "$bg" ]; then
        kill -KILL "$bg" 2> /dev/null || true
        wait "$bg" 2> /dev/null || true
    fi
    test_end
}
trap end EXIT

hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
    --listen tcp://127.0.0.1:0 --data "$work/data" --log-level warn ||
    fail "hopperd did not start: $(cat "$work/hopperd.err")"
export HOPPER_URL=$hopperd_url
h() { "$hopper" "$@"; }

# wait_for FILE: until FILE exists (60 s at most).
wait_for() {
    for _ in $(seq 1200); do
        [ -e "$1" ] && return 0
        sleep 0.05
    done
    fail "$1 never appeared"
}

# A worker script: records its environment and stdin, prints a result.
cat > "$work/ok.sh" << 'EOF'
#!/bin/sh
payload=$(cat)
env | grep '^HOPPER_' | sort > "$OUT_DIR/$HOPPER_ID.env"
echo "done:$payload"
EOF
chmod +x "$work/ok.sh"

# ---- exit 0: ack with stdout as the result ---------------------------------
ids=()
for i in 1 2 3; do
    ids+=("$(h enqueue jobs --header trace-id=t$i "p$i")")
done
OUT_DIR=$work h work jobs -j 2 --limit 3 -- "$work/ok.sh" > "$work/w1.out" ||
    fail "hopper work --limit 3 failed: $(cat "$work/w1.out")"
[ "$(grep -c ' acked$' "$work/w1.out")" -eq 3 ] ||
    fail "work printed: $(cat "$work/w1.out")"
ok
for i in 0 1 2; do
    id=${ids[$i]}
    got=$(h get "$id" --json)
    [ "$(jq -r .state <<< "$got")" = delivered ] || fail "$id: $got"
    [ "$(jq -r .result <<< "$got")" = "done:p$((i + 1))" ] || fail "$id: $got"
    grep -qx "HOPPER_ID=$id" "$work/$id.env" || fail "$(cat "$work/$id.env")"
    grep -qx "HOPPER_ATTEMPT=1" "$work/$id.env" || fail "$(cat "$work/$id.env")"
    grep -qx "HOPPER_LANE=jobs" "$work/$id.env" || fail "$(cat "$work/$id.env")"
    grep -qx "HOPPER_H_TRACE_ID=t$((i + 1))" "$work/$id.env" ||
        fail "$(cat "$work/$id.env")"
done
ok

# ---- exit 75: a retry; other failures: a nack with stderr's tail -----------
cat > "$work/tempfail.sh" << 'EOF'
#!/bin/sh
echo "smtp busy" >&2
exit 75
EOF
cat > "$work/boom.sh" << 'EOF'
#!/bin/sh
cat > /dev/null
echo "some noise" >&2
echo "boom: bad input" >&2
exit 3
EOF
chmod +x "$work/tempfail.sh" "$work/boom.sh"
id=$(h enqueue retry 'x')
h work retry --limit 1 -- "$work/tempfail.sh" > "$work/w2.out"
grep -q "^$id retried$" "$work/w2.out" || fail "$(cat "$work/w2.out")"
got=$(h get "$id" --json)
# Delayed by the lane's backoff (a second), or pending again already.
case "$(jq -r .state <<< "$got")" in delayed | pending) ;; *) fail "$got" ;; esac
[ "$(jq -r .attempts <<< "$got")" = 1 ] || fail "$got"
jq -r .last_error <<< "$got" | grep -q 'temporary failure.*smtp busy' ||
    fail "$got"
ok
id=$(h enqueue fails --max-attempts 1 'x')
h work fails --limit 1 -- "$work/boom.sh" > "$work/w3.out"
got=$(h get "$id" --json)
[ "$(jq -r .state <<< "$got")" = dead ] || fail "$got"
[ "$(jq -r .last_error <<< "$got")" = "exit 3: some noise
boom: bad input" ] || fail "$got"
ok

# ---- --timeout kills an overrunning command ---------------------------------
id=$(h enqueue slow 'x')
h work slow --limit 1 --timeout 500ms -- sh -c 'exec sleep 300' \
    > "$work/w4.out"
got=$(h get "$id" --json)
jq -r .last_error <<< "$got" | grep -q 'killed after --timeout 500 ms' ||
    fail "$got"
ok

# ---- heartbeats: a command that outlives its lease still acks ---------------
id=$(h enqueue long 'x')
h work long --limit 1 --lease 3s -- sh -c 'cat > /dev/null; sleep 7' \
    > "$work/w5.out"
got=$(h get "$id" --json)
[ "$(jq -r .state <<< "$got")" = delivered ] || fail "$got"
[ "$(jq -r .attempts <<< "$got")" = 1 ] || fail "$got"
ok

# ---- SIGTERM drains: the running command's message is given back ------------
id=$(h enqueue drain 'x')
cat > "$work/hang.sh" << 'EOF'
#!/bin/sh
echo $$ > "$OUT_DIR/started.tmp"
mv "$OUT_DIR/started.tmp" "$OUT_DIR/started"
exec sleep 300
EOF
chmod +x "$work/hang.sh"
OUT_DIR=$work "$hopper" work drain --grace 300ms -- "$work/hang.sh" \
    > "$work/w6.out" 2> "$work/w6.err" &
bg=$!
wait_for "$work/started"
kill -TERM "$bg"
rc=0
wait "$bg" || rc=$?
bg=""
[ "$rc" -eq 0 ] || fail "hopper work exited $rc on SIGTERM: $(cat "$work/w6.err")"
grep -q "^$id given-back$" "$work/w6.out" || fail "$(cat "$work/w6.out")"
got=$(h get "$id" --json)
[ "$(jq -r .state <<< "$got")" = pending ] || fail "$got"
[ "$(jq -r .attempts <<< "$got")" = 0 ] || fail "$got"
ok

# ---- the command line ---------------------------------------------------------
rc=0
h work jobs > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "work without CMD exited $rc"
rc=0
h work jobs -j 0 -- true > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "work -j 0 exited $rc"
ok

hopperd_stop || fail "hopperd did not stop cleanly"
echo "$passed passed, 0 failed"
