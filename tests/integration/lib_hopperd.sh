# lib_hopperd.sh - sourced by the shell tests that start hopperd, so they
# all wait for it the same way. Needs $hopperd (the binary's path).
#
# hopperd_start OUT ERR ARGS...
#   Starts "$hopperd" ARGS in the background, stdout to OUT and stderr to
#   ERR, and waits (polling, up to 30 s) for its start-up lines. "data in"
#   is printed last and in the same write as the others, so once it is
#   there every listener's URL is too. Sets hopperd_pid, hopperd_url (the
#   first listener's bound URL) and hopperd_http ("" without --http).
#   Returns 1 if hopperd exited or did not start in time.
hopperd_start() {
    local out=$1 err=$2
    shift 2
    # Emptied here, not by the child's redirection: on a busy machine the
    # loop below can run before the child does, read an earlier run's
    # lines and dial a port nobody listens on.
    : > "$out"
    : > "$err"
    "$hopperd" "$@" > "$out" 2> "$err" &
    hopperd_pid=$!
    hopperd_url="" hopperd_http=""
    for _ in $(seq 600); do
        if grep -q "data in" "$out"; then
            hopperd_url=$(sed -n 's/.*listening on //p' "$out" | head -n 1)
            hopperd_http=$(sed -n 's/.* http on \([^ ]*\).*/\1/p' "$out")
            [ -n "$hopperd_url" ]
            return
        fi
        kill -0 "$hopperd_pid" 2> /dev/null || return 1
        sleep 0.05
    done
    return 1
}

# hopperd_stop: SIGTERM to the hopperd hopperd_start started; returns 1
# unless it exits 0. hopperd_kill: the same for an EXIT trap, quietly.
hopperd_stop() {
    local rc=0
    kill -TERM "$hopperd_pid"
    wait "$hopperd_pid" || rc=$?
    hopperd_pid=""
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: hopperd exited $rc on SIGTERM"
        return 1
    fi
}

hopperd_kill() {
    if [ -n "${hopperd_pid:-}" ]; then
        kill -TERM "$hopperd_pid" 2> /dev/null || true
        wait "$hopperd_pid" 2> /dev/null || true
        hopperd_pid=""
    fi
}

# test_begin: the bookkeeping of a test script: work (a fresh temp dir),
# passed, ok and fail, and an EXIT trap that stops its hopperd and
# removes work.
test_begin() {
    work=$(mktemp -d)
    passed=0
    trap test_end EXIT
}

test_end() {
    hopperd_kill
    rm -rf "$work"
}

ok() { passed=$((passed + 1)); }

fail() {
    echo "FAIL: $*"
    echo "$passed passed, 1 failed"
    exit 1
}
