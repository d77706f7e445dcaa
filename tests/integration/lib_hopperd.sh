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
