#!/usr/bin/env bash
# Runs the Quickstart of README.md, line by line as a new user would,
# against a fresh hopperd, and checks what each line's comment claims.
# The lines are read from README.md (the first sh block after the
# "## Quickstart" heading), not copied here: change the README and this
# test runs the new lines. ID and TOKEN stand for what the last claim
# printed. A comment this test does not know fails it, so a new claim in
# the README gets a check here.
#   quickstart_test.sh TOP HOPPERD HOPPER
set -euo pipefail
top=$1
hopperd=$2
hopper=$3
# shellcheck source=tests/integration/lib_hopperd.sh
. "$(dirname "$0")/lib_hopperd.sh"
test_begin
ULID='[0-9A-HJKMNP-TV-Z]{26}'

awk '/^## Quickstart/ { q = 1 } q && /^```sh$/ { on = 1; next }
     on && /^```$/ { exit } on' "$top/README.md" > "$work/lines"
[ "$(grep -c '^hopper ' "$work/lines")" -ge 8 ] ||
    fail "no Quickstart block with hopper commands in README.md"
ok

hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
    --listen tcp://127.0.0.1:0 --data "$work/data" --log-level warn ||
    fail "hopperd did not start: $(cat "$work/hopperd.err")"
export HOPPER_URL=$hopperd_url
ID="" TOKEN=""

# run CMD: runs one Quickstart line through the shell, as typed; stdout in
# $work/out, stderr in $work/err; it must exit 0.
run() {
    local rc=0
    last=$1
    (eval "$1") < /dev/null > "$work/out" 2> "$work/err" || rc=$?
    [ "$rc" -eq 0 ] || fail "'$1' exited $rc: $(cat "$work/out" "$work/err")"
    ok
}
field() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }' "$work/out"; }
state_is() {
    "$hopper" get "$ID" < /dev/null > "$work/get" 2>&1 ||
        fail "after '$last': hopper get $ID failed: $(cat "$work/get")"
    grep -Eq "^state +$1$" "$work/get" ||
        fail "after '$last' (# $comment), $ID is not $1: $(cat "$work/get")"
    ok
}

while IFS= read -r line; do
    comment=""
    if [[ "$line" =~ ^(.*[^[:space:]])[[:space:]]+#[[:space:]]+(.*)$ ]]; then
        line=${BASH_REMATCH[1]} comment=${BASH_REMATCH[2]}
    fi
    case "$line" in
    '' | '#'*) continue ;;
    'export PATH='*)
        # The README's PATH entry must be where the build puts the CLI;
        # here it is the hopper under test.
        [[ "$line" == *"/clients/cli:"* && "$hopper" == */clients/cli/hopper ]] ||
            fail "'$line' does not point at the CLI's build dir (clients/cli)"
        PATH="$(dirname "$hopper"):$PATH"
        export PATH
        ok
        continue
        ;;
    esac
    line=$(sed -E "s/\bID\b/$ID/g; s/\bTOKEN\b/$TOKEN/g" <<< "$line")
    run "$line"
    case "$comment" in
    '') ;;
    'prints the new id')
        grep -Eqx "$ULID" "$work/out" || fail "'$line' printed no id: $(cat "$work/out")"
        ok
        ;;
    'a second run returns the same id')
        first=$(cat "$work/out")
        grep -Eqx "$ULID" <<< "$first" || fail "'$line' printed no id: $first"
        run "$line"
        grep -qx "$first (duplicate)" "$work/out" ||
            fail "'$line' again printed '$(cat "$work/out")', not '$first (duplicate)'"
        ok
        ;;
    'id, claim token, payload' | 'note ID and TOKEN')
        ID=$(field id) TOKEN=$(field token)
        if ! [[ "$ID" =~ ^$ULID$ && "$TOKEN" =~ ^[0-9a-f]{32}$ ]] ||
            ! grep -Eq '^payload +.' "$work/out"; then
            fail "'$line' did not print an id, a token and a payload: $(cat "$work/out")"
        fi
        ok
        ;;
    'done: delivered') state_is delivered ;;
    'counts per state')
        for s in pending delayed claimed delivered dead; do
            grep -Eq "^$s +[0-9]+$" "$work/out" ||
                fail "'$line' shows no count of $s: $(cat "$work/out")"
        done
        ok
        ;;
    'for messages enqueued from now on')
        n=$(sed -nE 's/.*--max-attempts ([0-9]+).*/\1/p' <<< "$line")
        grep -Eq "^max_attempts +$n$" "$work/out" ||
            fail "'$line' did not set max_attempts $n: $(cat "$work/out")"
        ok
        ;;
    '-> dead')
        grep -q 'now a dead letter' "$work/out" ||
            fail "'$line' did not dead-letter $ID: $(cat "$work/out")"
        state_is dead
        ;;
    'shows ID')
        grep -q "^$ID " "$work/out" || fail "'$line' does not show $ID: $(cat "$work/out")"
        ok
        ;;
    'back to pending') state_is pending ;;
    *) fail "README.md's Quickstart claims '$comment' ('$line'): teach $0 to check it" ;;
    esac
done < "$work/lines"

hopperd_stop || exit 1
ok
echo "$passed passed, 0 failed"
