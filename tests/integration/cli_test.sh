#!/usr/bin/env bash
# The hopper CLI against a real hopperd: what each command prints (as text
# and as --json) and how it exits, the error exit codes (2 usage,
# 3 INVALID_ARGUMENT, 4 NOT_FOUND, 5 LOST_CLAIM, 8 UNAVAILABLE,
# 10 ALREADY_EXISTS) and errors as JSON with --json, where enqueue's
# payload comes from (a terminal and an empty payload are refused), dead
# letters and their replay, a paused lane, stats' targets, a long-poll
# claim woken by an enqueue, await ending with an ack's result, and stats
# paging through a lane's targets.
#   cli_test.sh HOPPERD HOPPER
# shellcheck disable=SC2016 # the $names in single quotes are jq's
set -euo pipefail
hopperd=$1
hopper=$2
# shellcheck source=tests/integration/lib_hopperd.sh
. "$(dirname "$0")/lib_hopperd.sh"
work=$(mktemp -d)
out=$work/out
err=$work/err
pid=""
bg=""
cleanup() {
    local p
    for p in $bg $pid; do
        kill -TERM "$p" 2> /dev/null || true
        wait "$p" 2> /dev/null || true
    done
    hopperd_kill
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
last=""
fail() {
    echo "FAIL: $*"
    echo "$passed passed, 1 failed"
    exit 1
}
ok() { passed=$((passed + 1)); }
now_ms() { date +%s%3N; }

# run_at URL WANT ARGS...: runs hopper --url URL ARGS with stdout in $out
# and stderr in $err; fails unless it exits WANT.
run_at() {
    local at=$1 want=$2 rc=0
    shift 2
    last="hopper $*"
    "$hopper" --url "$at" "$@" > "$out" 2> "$err" || rc=$?
    [ "$rc" -eq "$want" ] ||
        fail "$last exited $rc, wanted $want
--- stdout:
$(cat "$out")
--- stderr:
$(cat "$err")"
    ok
}
run() { run_at "$url" "$@"; }

# out_has / err_has ERE: a line of stdout / stderr matches.
out_has() {
    grep -Eq -- "$1" "$out" || fail "$last: no stdout line matches /$1/:
$(cat "$out")"
    ok
}
err_has() {
    grep -Eq -- "$1" "$err" || fail "$last: no stderr line matches /$1/:
$(cat "$err")"
    ok
}
out_lacks() {
    if grep -Eq -- "$1" "$out"; then
        fail "$last: stdout should not match /$1/:
$(cat "$out")"
    fi
    ok
}
err_lacks() {
    if grep -Eq -- "$1" "$err"; then
        fail "$last: stderr should not match /$1/:
$(cat "$err")"
    fi
    ok
}
# err_json EXIT CODE REASON: stderr is exactly one JSON object, the error
# shape of --json, with these values.
err_json() {
    local n
    n=$(wc -l < "$err")
    [ "$n" -eq 1 ] || fail "$last: wanted one line of JSON on stderr, got $n:
$(cat "$err")"
    jq -e --argjson e "$1" --arg c "$2" --arg r "$3" 'keys == ["code", "exit",
        "message", "reason"] and .exit == $e and .code == $c and .reason == $r
        and (.message | length > 0)' "$err" > /dev/null 2>&1 ||
        fail "$last: stderr is not {exit: $1, code: $2, reason: $3, message}:
$(cat "$err")"
    ok
}
out_empty() {
    [ ! -s "$out" ] || fail "$last: wanted no stdout, got:
$(cat "$out")"
    ok
}

# json_lines N: stdout is exactly N lines, each one JSON object.
json_lines() {
    local n
    n=$(wc -l < "$out")
    [ "$n" -eq "$1" ] || fail "$last: wanted $1 --json line(s), got $n:
$(cat "$out")"
    jq -e -s --argjson n "$1" 'length == $n and all(.[]; type == "object")' \
        "$out" > /dev/null 2>&1 || fail "$last: not $1 JSON object(s):
$(cat "$out")"
    ok
}
# jcheck [JQ OPTIONS...] FILTER: FILTER, applied to the array of the JSON
# objects on stdout (jq --slurp), is true.
jcheck() {
    local filter=${*: -1}
    local opts=("${@:1:$#-1}")
    jq -e -s "${opts[@]}" "$filter" "$out" > /dev/null 2>&1 ||
        fail "$last: --json output does not satisfy '$filter' ${opts[*]}:
$(cat "$out")"
    ok
}
# val FILTER: prints one value from the slurped --json output.
val() { jq -er -s "$1" "$out"; }
# field KEY: the value of a "KEY   value" line of a text block.
field() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }' "$out"; }

ULID='^[0-9A-HJKMNP-TV-Z]{26}$'
HEX32='^[0-9a-f]{32}$'

# ---- start hopperd ------------------------------------------------------
rc=0
hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
    --listen tcp://127.0.0.1:0 --data "$work/data" --log-level warn || rc=$?
pid=$hopperd_pid url=$hopperd_url
[ "$rc" -eq 0 ] || fail "hopperd did not start: $(cat "$work/hopperd.err")"
case "$url" in
tcp://127.0.0.1:*) ;;
*) fail "hopperd listens on '$url', not on 127.0.0.1" ;;
esac

# ---- version and ping ---------------------------------------------------
run 0 --version
out_has '^hopper [0-9]+\.[0-9]+\.[0-9]+ \(libhopper [0-9]+\.[0-9]+\.[0-9]+\)$'

run 0 ping
out_has "^hopperd [0-9.]+ at $url: instance [0-9a-f]{32}, clock [0-9T:.-]+Z, round trip [0-9]+ ms$"

# Backups are off unless hopperd has --backup-dir (backup_test has the rest).
run 5 admin backup b1
err_has '^hopper: FAILED_PRECONDITION BACKUP_DISABLED: '
run 3 admin backup ../b1
err_has '^hopper: INVALID_ARGUMENT BAD_NAME: '

run 0 --json ping
json_lines 1
jcheck --arg url "$url" '.[0] | .url == $url and (.version | length > 0)
    and .now_ms > 1600000000000 and (.instance | test("^[0-9a-f]{32}$"))
    and .rtt_ms >= 0'

# ---- enqueue, dedupe ----------------------------------------------------
run 0 enqueue emails hello
out_has "$ULID"
id_a=$(cat "$out")

run 0 enqueue emails --dedupe order-1 first
out_has "$ULID"
id_b=$(cat "$out")
[ "$id_b" != "$id_a" ] || fail "two enqueues returned the same id $id_a"
ok

run 0 enqueue emails --dedupe order-1 first
out_has "^$id_b \(duplicate\)$"

run 0 --json enqueue emails --dedupe order-1 first
json_lines 1
jcheck --arg id "$id_b" '.[0] == {id: $id, duplicate: true}'

run 0 --json enqueue emails --dedupe order-2 second
json_lines 1
jcheck --arg id "$id_b" '.[0] | .duplicate == false and .id != $id'

# The payload from stdin, byte for byte (newlines too).
printf 'line 1\nline 2\n' > "$work/payload"
run 0 enqueue stdin - < "$work/payload"
out_has "$ULID"
run 0 --json claim stdin
jcheck '.[0].payload == "line 1\nline 2\n"'

run 0 stats emails
out_has '^lane +emails$'
out_has '^pending +3$'
out_has '^enqueued_total +3$'
out_has '^dedupe_hits_total +2$'
out_has '^paused +no$'

run 0 --json stats emails
json_lines 1
jcheck '.[0] | .lane == "emails" and .pending == 3 and .claimed == 0
    and .enqueued_total == 3 and .dedupe_hits_total == 2
    and .settings.paused == false and .settings.max_attempts == 5'

# ---- claim, ack, get ----------------------------------------------------
run 0 claim emails
[ "$(field id)" = "$id_a" ] || fail "$last: claimed '$(field id)', wanted $id_a"
ok
tok_a=$(field token)
[[ "$tok_a" =~ $HEX32 ]] || fail "$last: token '$tok_a' is not 32 hex digits"
ok
out_has '^payload +hello$'
out_has '^attempts +1 of 5$'

run 0 ack "$id_a" "$tok_a"
out_has "^acked $id_a$"

run 0 get "$id_a"
out_has "^id +$id_a$"
out_has '^state +delivered$'
out_has '^payload +hello$'

run 0 --json get "$id_a"
json_lines 1
jcheck --arg id "$id_a" '.[0] | .id == $id and .state == "delivered"
    and .lane == "emails" and .payload == "hello" and .finished_at_ms > 0'

# docs/protocol.md: an ack repeated with the same token is OK.
run 0 ack "$id_a" "$tok_a"
out_has "^acked $id_a$"

before=$(now_ms)
run 0 --json claim emails --lease 60s --consumer cli-test
json_lines 1
jcheck --arg id "$id_b" --argjson t "$before" '.[0] | .id == $id
    and .state == "claimed" and .lane == "emails" and .payload == "first"
    and .attempts == 1 and .max_attempts == 5 and .consumer == "cli-test"
    and (.token | test("^[0-9a-f]{32}$"))
    and .lease_expires_at_ms >= $t + 60000'
tok_b=$(val '.[0].token') || fail "$last: no token"

# Someone else's token: LOST_CLAIM, exit 5, nothing on stdout.
run 5 ack "$id_b" "$tok_a"
out_empty
err_has '^hopper: FAILED_PRECONDITION LOST_CLAIM: '
run 5 ack "$id_b" 00000000000000000000000000000000
err_has '^hopper: FAILED_PRECONDITION LOST_CLAIM: '
run 0 --json get "$id_b"
jcheck '.[0].state == "claimed"'

# await: a settled message comes back at once; one still claimed, with
# no --wait, is looked at once and reported not settled.
run 0 await "$id_a" --wait 30s
out_has "^id +$id_a$"
out_has '^state +delivered$'
run 0 await "$id_b"
out_empty
err_has "^hopper: message $id_b is not settled yet$"
# An await that may park before the ack or start after it: either way it
# ends with the ack's result (the wait is the await's, never the test's).
"$hopper" --url "$url" --json await "$id_b" --wait 30s \
    > "$work/await.out" 2> "$work/await.err" &
awaiter=$!

run 0 --json ack "$id_b" "$tok_b" --result sent
json_lines 1
jcheck --arg id "$id_b" '.[0] == {id: $id, acked: true}'
wait "$awaiter" || fail "hopper await --wait 30s exited $?: $(cat "$work/await.err")"
jq -e --arg id "$id_b" '.id == $id and .state == "delivered"
    and .result == "sent"' "$work/await.out" > /dev/null ||
    fail "hopper await --wait 30s printed $(cat "$work/await.out")"
ok

run 0 lanes
out_has '^LANE +PAUSED +PENDING +DELAYED +CLAIMED +DELIVERED +DEAD +OLDEST_MS$'
out_has '^emails +no +1 +0 +0 +2 +0 +[0-9]+$'
out_has '^stdin +no +0 +0 +1 +0 +0 +[0-9]+$'

run 0 --json lanes
json_lines 2
jcheck 'map(select(.lane == "emails")) | length == 1 and (.[0] | .paused == false
    and .pending == 1 and .claimed == 0 and .delivered == 2 and .dead == 0)'

# ---- nack to dead letter, dead list, dead replay --------------------------
run 0 lane set dl --max-attempts 1
out_has '^max_attempts +1$'
run 0 --json lane show dl
jcheck '.[0].max_attempts == 1'

run 0 enqueue dl boom
id_d=$(cat "$out")
run 0 --json claim dl
jcheck --arg id "$id_d" '.[0] | .id == $id and .max_attempts == 1'
tok_d=$(val '.[0].token') || fail "$last: no token"

run 0 nack "$id_d" "$tok_d" --error "it broke"
out_has "^nacked $id_d: attempts used up, now a dead letter$"

run 0 --json get "$id_d"
jcheck '.[0] | .state == "dead" and .last_error == "it broke"
    and .attempts == 1'

run 0 dead list dl
out_has '^ID +TARGET +ATTEMPTS +DEAD AT +LAST ERROR$'
out_has "^$id_d +- +1/1 +[0-9T:.-]+Z +it broke$"

run 0 --json dead list dl
json_lines 1
jcheck --arg id "$id_d" '.[0] | .id == $id and .state == "dead"
    and .last_error == "it broke"'

run 0 --json stats dl
jcheck '.[0] | .pending == 0 and .dead == 1 and .dead_total == 1'

run 0 dead replay dl
out_has '^replayed 1 dead letter of dl$'

run 0 --json stats dl
jcheck '.[0] | .pending == 1 and .dead == 0 and .replayed_total == 1'
run 0 stats dl
out_has '^pending +1$'
out_has '^dead +0$'

run 0 --json get "$id_d"
jcheck '.[0] | .state == "pending" and .attempts == 0'
run 0 --json dead list dl
out_empty

# The same with the limit on the message instead of the lane, by id.
run 0 enqueue dl2 --max-attempts 1 boom2
id_e=$(cat "$out")
run 0 --json claim dl2
jcheck '.[0].max_attempts == 1'
tok_e=$(val '.[0].token') || fail "$last: no token"
run 0 --json nack "$id_e" "$tok_e" --error "broke again"
jcheck --arg id "$id_e" '.[0] | .id == $id and .dead == true'
run 0 --json dead replay dl2 "$id_e"
jcheck '.[0] | .lane == "dl2" and .count == 1 and .more == false'
run 0 --json stats dl2
jcheck '.[0] | .pending == 1 and .dead == 0'

# ---- lane pause and resume ----------------------------------------------
run 0 enqueue pz held
id_p=$(cat "$out")
run 0 lane pause pz
out_has '^lane pz paused$'

run 0 claim pz
out_empty
err_has '^hopper: no message to claim$'
run 0 --json claim pz
out_empty

run 0 stats pz
out_has '^pending +1$'
out_has '^paused +yes$'
run 0 --json lanes
jcheck 'map(select(.lane == "pz")) | length == 1 and .[0].paused == true
    and .[0].pending == 1'

run 0 lane resume pz
out_has '^lane pz resumed$'
run 0 --json claim pz
json_lines 1
jcheck --arg id "$id_p" '.[0] | .id == $id and .payload == "held"'

# ---- enqueue: where the payload comes from ---------------------------------
# No PAYLOAD and a terminal on stdin: refused at once, nothing enqueued
# (reading the terminal would look like a hang). script(1) gives it one.
rc=0
timeout 60 script -qec "'$hopper' --url '$url' enqueue tty" /dev/null \
    > "$work/tty" 2>&1 || rc=$?
last="hopper enqueue tty (stdin a terminal)"
[ "$rc" -eq 2 ] || fail "$last exited $rc, wanted 2: $(cat "$work/tty")"
ok
grep -q "no payload" "$work/tty" || fail "$last did not say why: $(cat "$work/tty")"
ok
# An empty payload needs --allow-empty: an empty stdin is more often a
# producer that failed upstream.
run 2 enqueue tty < /dev/null
out_empty
err_has '^hopper: the payload is empty; --allow-empty'
run 2 --json enqueue tty ''
err_json 2 USAGE EMPTY_PAYLOAD
run 4 --json stats tty
err_json 4 NOT_FOUND NO_LANE
run 0 enqueue tty --allow-empty < /dev/null
out_has "$ULID"
run 0 --json claim tty
jcheck '.[0].payload == ""'

# ---- stats: targets, the same in text and JSON ----------------------------
# "" is the target of messages enqueued without one.
run 0 enqueue untargeted plain
run 0 enqueue untargeted --target a2a routed
run 0 stats untargeted
out_has '^targets +""$'
out_has '^ +a2a$'
run 0 --json stats untargeted
jcheck '.[0].targets == ["", "a2a"]'

# ---- errors and their exit codes ------------------------------------------
run 4 get 01ARZ3NDEKTSV4RRFFQ69G5FAV
out_empty
err_has '^hopper: NOT_FOUND NO_MESSAGE: '

run 3 get not-a-ulid
out_empty
err_has '^hopper: INVALID_ARGUMENT BAD_ID: '

# With --json every error is one JSON object on stderr.
run 4 --json get 01ARZ3NDEKTSV4RRFFQ69G5FAV
out_empty
err_json 4 NOT_FOUND NO_MESSAGE
run 5 --json ack "$id_b" "$tok_a"
err_json 5 FAILED_PRECONDITION LOST_CLAIM
run 2 --json claim emails --bogus
err_json 2 USAGE BAD_COMMAND_LINE
run 2 --json frob
err_json 2 USAGE BAD_COMMAND_LINE
run_at tcp://127.0.0.1:1 8 --json --timeout 500 ping
err_json 8 UNAVAILABLE UNREACHABLE

# A lone enqueue's error does not number its draft.
run 3 enqueue 'bad lane!' x
out_empty
err_has '^hopper: INVALID_ARGUMENT BAD_NAME: lane name must be'
err_lacks 'draft'
run 3 stats Bad/Lane
err_has '^hopper: INVALID_ARGUMENT BAD_NAME: '
# Lane names are 1-64 characters: 64 is fine, 65 is not.
lane64=$(printf '%064d' 0 | tr 0 L)
run 0 enqueue "$lane64" x
out_has "$ULID"
run 3 enqueue "${lane64}L" x
err_has '^hopper: INVALID_ARGUMENT BAD_NAME: '

run 2 frob
out_empty
err_has "^hopper: unknown command 'frob'$"
run 2 ack "$id_a"
out_empty
err_has "^hopper: 'ack' needs ID TOKEN$"
run 2 claim emails --bogus
err_has "^hopper: unknown option '--bogus'$"
run 2 claim emails -n 1x
err_has '^hopper: --max must be a number'
run 2 claim emails -n 0
err_has '^hopper: -n/--max must be 1-1000$'

# Nothing listens on port 1: UNAVAILABLE within about the timeout.
t0=$(now_ms)
run_at tcp://127.0.0.1:1 8 --timeout 500 ping
took=$(($(now_ms) - t0))
out_empty
err_has '^hopper: UNAVAILABLE [A-Z_]+: '
[ "$took" -lt 5000 ] || fail "$last took $took ms with --timeout 500"
ok

# ---- a long-poll claim woken by an enqueue ----------------------------------
t0=$(now_ms)
"$hopper" --url "$url" --json claim lp --wait 5000 \
    > "$work/lp.out" 2> "$work/lp.err" &
bg=$!
sleep 1
kill -0 "$bg" 2> /dev/null ||
    fail "claim --wait 5000 returned within 1 s on an empty lane: $(cat "$work/lp.out" "$work/lp.err")"
ok
run 0 enqueue lp wake
id_w=$(cat "$out")
rc=0
wait "$bg" || rc=$?
took=$(($(now_ms) - t0))
bg=""
last="hopper --json claim lp --wait 5000"
[ "$rc" -eq 0 ] || fail "$last exited $rc: $(cat "$work/lp.err")"
ok
cp "$work/lp.out" "$out"
json_lines 1
jcheck --arg id "$id_w" '.[0] | .id == $id and .payload == "wake"'
[ "$took" -lt 4000 ] || fail "$last took $took ms: not woken by the enqueue"
ok

# ---- stats: targets a page at a time ----------------------------------
for t in a b c; do run 0 enqueue tg --target "$t" x; done
run 0 --json stats tg --targets-limit 2
jcheck '.[0] | (.targets | length) == 2 and .targets_next_cursor != ""'
tcur=$(jq -r '.targets_next_cursor' "$out")
run 0 --json stats tg --targets-limit 2 --targets-cursor "$tcur"
jcheck '.[0] | .targets == ["c"] and .targets_next_cursor == ""'
run 0 stats tg --targets-limit 2
out_has "^more targets +hopper stats tg --targets-cursor $tcur$"
run 0 --json stats tg --targets-limit 1 --all-targets
jcheck '.[0] | .targets == ["a", "b", "c"] and .targets_next_cursor == ""'
run 2 stats --targets-limit 1
run 2 stats tg --targets-cursor xyz

# ---- stop hopperd -----------------------------------------------------------
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "hopperd exited $rc on SIGTERM: $(cat "$work/hopperd.err")"
ok

# ---- a backup name used twice: ALREADY_EXISTS, exit 10 ---------------------
mkdir -p "$work/b/backups"
hopperd_start "$work/b.out" "$work/b.err" --listen tcp://127.0.0.1:0 \
    --data "$work/b/data" --log-level warn --backup-dir "$work/b/backups" ||
    fail "hopperd --backup-dir did not start: $(cat "$work/b.err")"
url=$hopperd_url
run 0 admin backup nightly-1
out_has "^backup written to $work/b/backups/nightly-1 on the broker's host: "
run 10 admin backup nightly-1
err_has '^hopper: ALREADY_EXISTS BACKUP_EXISTS: '
run 10 --json admin backup nightly-1
err_json 10 ALREADY_EXISTS BACKUP_EXISTS
hopperd_stop || exit 1
ok

echo "$passed passed, 0 failed"
