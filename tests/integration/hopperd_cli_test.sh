#!/usr/bin/env bash
# hopperd's command line: help and version, a bad flag, a busy port (found
# before the data dir is touched), an unusable data dir, HOPPER_*
# variables, a clean stop on SIGTERM, and hopperd check.
set -euo pipefail
hopperd=$1
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); }

# expect CODE PATTERN -- ARGS...: runs hopperd, checks exit code and stderr.
expect() {
    local code=$1 pattern=$2
    shift 3
    local rc=0
    "$hopperd" "$@" > "$work/out" 2> "$work/err" || rc=$?
    [ "$rc" -eq "$code" ] || fail "hopperd $* exited $rc, wanted $code: $(cat "$work/err")"
    grep -q -- "$pattern" "$work/out" "$work/err" || fail "hopperd $* did not say '$pattern'"
    ok
}

expect 0 "usage: hopperd" -- --help
expect 0 "hopperd 0" -- --version
expect 2 "unknown flag '--bogus'" -- --bogus
expect 2 "must be full or none" -- --sync maybe
expect 2 "not a size" -- --map-size lots
expect 2 "needs a value" -- --data
expect 2 "--map-size is above --max-map-size" -- --map-size 2G --max-map-size 1G
expect 2 "--max-map-size is below 1M" -- --map-size 256K --max-map-size 1023K
expect 2 "--map-size is below 64K" -- --map-size 8K
touch "$work/afile"
expect 1 "cannot start" -- --data "$work/afile/data" --listen tcp://127.0.0.1:0
expect 1 "ipc:// is not offered" -- --data "$work/d0" --listen "ipc://$work/sock"
# Without keys, a listener other hosts can reach is refused. What counts is
# the address bound, not how the URL is written: every address, the empty
# host (all addresses) and IPv6's any are refused; any 127/8 address is
# local.
expect 1 "no --auth-keys" -- --data "$work/d0" --listen tcp://0.0.0.0:0
expect 1 "no --auth-keys" -- --data "$work/d0" --listen tcp://:0
expect 1 "no --auth-keys" -- --data "$work/d0" --listen "tcp://[::]:0"
[ ! -e "$work/d0" ] || fail "a refused start created the data dir"
ok
# A --backup-dir that cannot take backups is refused at start, not at the
# first backup.
expect 1 "backup-dir '$work/nowhere'" -- --data "$work/d0" \
    --listen tcp://127.0.0.1:0 --backup-dir "$work/nowhere"
expect 1 "is not a directory" -- --data "$work/d0" \
    --listen tcp://127.0.0.1:0 --backup-dir "$work/afile"

# start waits until hopperd prints its URL; sets url and pid.
start() {
    # Emptied before the child starts: see hopperd_start in lib_hopperd.sh.
    : > "$work/start.out"
    "$hopperd" "$@" > "$work/start.out" 2> "$work/start.err" &
    pid=$!
    pids+=("$pid")
    url=""
    for _ in $(seq 600); do
        url=$(sed -n 's/.*listening on //p' "$work/start.out" | head -n 1)
        [ -n "$url" ] && grep -q "data in" "$work/start.out" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

start --data "$work/d1" --listen tcp://127.0.0.1:0 --log-level warn || fail "hopperd did not start"
grep -q "data in $work/d1 (sync full)" "$work/start.out" || fail "no data dir line"
ok
# The same port again is busy: a clear message and exit 1.
expect 1 "address already in use" -- --data "$work/d2" --listen "$url"
# The busy port was found before the data dir was touched.
[ ! -e "$work/d2" ] || fail "a start refused for a busy port created its data dir"
ok
# An existing, empty data dir stays empty.
mkdir "$work/d2"
expect 1 "address already in use" -- --data "$work/d2" --listen "$url"
[ -z "$(ls -A "$work/d2")" ] || fail "a hopperd that found its port busy wrote into $work/d2: $(ls -A "$work/d2")"
ok
# A second hopperd on the same data dir is refused, and so is a check.
expect 1 "in use by another" -- --data "$work/d1" --listen tcp://127.0.0.1:0
expect 1 "in use by another" -- check --data "$work/d1"
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM exit status $rc"
ok
# Any loopback address is local: anonymous access is allowed there.
start --data "$work/d127" --listen tcp://127.0.0.2:0 --log-level warn ||
    fail "hopperd on 127.0.0.2 did not start: $(cat "$work/start.err")"
kill -TERM "$pid"; wait "$pid"
ok

# hopperd check: a stopped broker's store passes; no store is no pass.
expect 0 "is consistent: 0 messages" -- check --data "$work/d1"
expect 1 "no store in" -- check --data "$work/nothing"
[ ! -e "$work/nothing" ] || fail "check created a data dir"
ok
expect 2 "usage: hopperd check" -- check --data

# HOPPER_* variables configure it; a flag wins over the variable.
HOPPER_SYNC=none HOPPER_DATA="$work/d3" HOPPER_LISTEN=tcp://127.0.0.1:0 \
    start --log-level warn || fail "hopperd with env did not start"
grep -q "data in $work/d3 (sync none)" "$work/start.out" || fail "env not used"
kill -TERM "$pid"; wait "$pid"
ok
HOPPER_SYNC=none HOPPER_DATA="$work/d3" \
    start --sync full --listen tcp://127.0.0.1:0 --log-level warn || fail "start"
grep -q "(sync full)" "$work/start.out" || fail "flag did not win over env"
kill -TERM "$pid"; wait "$pid"
ok

# hopperd raises its soft open-file limit to the hard one: every client
# connection is a descriptor.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -gt 256 ]; then
    : > "$work/start.out"
    (ulimit -Sn 256 && exec "$hopperd" --data "$work/d4" \
        --listen tcp://127.0.0.1:0 --log-level info \
        > "$work/start.out" 2> "$work/start.err") &
    pid=$!
    for _ in $(seq 600); do
        grep -q "listening on" "$work/start.out" && break
        sleep 0.05
    done
    soft=$(awk '/Max open files/ { print $4 }' "/proc/$pid/limits")
    [ "$soft" = "$hard" ] || fail "soft fd limit $soft, wanted $hard"
    grep -q "open file limit.*soft=$hard hard=$hard was=256" "$work/start.err" ||
        fail "no open file limit log line: $(cat "$work/start.err")"
    kill -TERM "$pid"; wait "$pid"
    ok
fi
echo "$passed passed, 0 failed"
