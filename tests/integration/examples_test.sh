#!/usr/bin/env bash
# Installs the build (cmake --install) into a temp prefix, builds the
# libhopper examples against that install with both find_package and
# pkg-config (clients/c/examples/build-against-install.sh), then runs each
# pair of producer and worker against the installed hopperd and checks
# that the worker settled every message the producer sent. The README's C
# program is built too, from README.md with the README's own command
# line, and must run (finding libhopper) and do what it says.
#   examples_test.sh BUILD_DIR
set -euo pipefail
build=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/integration/lib_hopperd.sh"
work=$(mktemp -d)
prefix=$work/prefix
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
fail() {
    echo "FAIL: $*"
    echo "$passed passed, 1 failed"
    exit 1
}
ok() { passed=$((passed + 1)); }

# ---- install, and build the examples against the install ----------------
cmake --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 ||
    fail "cmake --install $build failed: $(cat "$work/install.log")"
for f in bin/hopperd bin/hopper include/hopper/hopper.h; do
    [ -e "$prefix/$f" ] || fail "the install lacks $f"
done
ok

"$top/clients/c/examples/build-against-install.sh" "$prefix" "$work/ex" \
    > "$work/build.log" 2>&1 ||
    fail "build-against-install.sh failed: $(cat "$work/build.log")"
for b in {cmake,make}/{producer,worker,runtime_worker}; do
    [ -x "$work/ex/$b" ] || fail "build-against-install.sh built no $b"
done
ok

# A sanitized build (HOPPER_SANITIZE=address,... or thread) installs a
# libhopper that needs libasan or libtsan, and the sanitizer must be the
# first library loaded: preload it for the (unsanitized) examples.
san=$(ldd "$work/ex/make/producer" | awk '/libasan|libtsan/ { print $3 }')
preload=()
if [ -n "$san" ]; then preload=(env LD_PRELOAD="$san"); fi

# ---- start the installed hopperd ----------------------------------------
rc=0
hopperd=$prefix/bin/hopperd
hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
    --listen tcp://127.0.0.1:0 --data "$work/data" --log-level warn || rc=$?
pid=$hopperd_pid url=$hopperd_url
[ "$rc" -eq 0 ] || fail "hopperd did not start: $(cat "$work/hopperd.err")"
case "$url" in
tcp://127.0.0.1:*) ;;
*) fail "hopperd listens on '$url', not on 127.0.0.1" ;;
esac

# ---- the README's program, built and run as the README says -------------
# Its only C block is app.c; its build line is the one starting "cc app.c"
# (with its continuation), run with pkg-config pointed at the prefix, as
# the README says to for a prefix of one's own. No LD_LIBRARY_PATH: the
# rpath in that line must find libhopper.
readme=$top/README.md
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on' "$readme" \
    > "$work/app.c"
grep -q '^main(void)$' "$work/app.c" ||
    fail "README.md's C block is not a whole program: $(cat "$work/app.c")"
ok
build_line=$(awk '/^cc app\.c/ { on = 1 } on { print; if (!/\\$/) exit }' \
    "$readme")
[ -n "$build_line" ] || fail "README.md has no 'cc app.c' build line"
pcdir=$(dirname "$(find "$prefix" -path '*/pkgconfig/hopper.pc' -print -quit)")
(cd "$work" && PKG_CONFIG_PATH=$pcdir bash -euc "$build_line") \
    > "$work/app.log" 2>&1 ||
    fail "README's '$build_line' failed: $(cat "$work/app.log")"
ok
rc=0
HOPPER_URL=$url "${preload[@]}" "$work/app" > "$work/app.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "README's app exited $rc: $(cat "$work/app.out")"
app_id=$(sed -n 's/^enqueued \([0-9A-HJKMNP-TV-Z]\{26\}\)$/\1/p' "$work/app.out")
if [ -z "$app_id" ] || ! grep -qx "acked $app_id" "$work/app.out"; then
    fail "README's app did not enqueue and ack one message: $(cat "$work/app.out")"
fi
ok

# ---- producer then worker, for each way of building them ----------------
# The CMake-built pair gets URL, LANE and COUNT as arguments; the make-built
# pair only HOPPER_URL, so it uses its defaults (lane "examples", 5).
for kind in cmake make; do
    ex=$work/ex/$kind
    if [ "$kind" = cmake ]; then
        lane=examples-cmake count=7
        args=("$url" "$lane")
        pargs=("$url" "$lane" "$count")
    else
        lane=examples count=5
        args=()
        pargs=()
    fi
    rc=0
    HOPPER_URL=$url "${preload[@]}" "$ex/producer" "${pargs[@]}" \
        > "$work/$kind.producer" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "$kind producer exited $rc: $(cat "$work/$kind.producer")"
    ok

    # COUNT distinct ids, then the first one again as a duplicate.
    sed -n 's/^enqueued \([0-9A-HJKMNP-TV-Z]\{26\}\)$/\1/p' \
        "$work/$kind.producer" > "$work/$kind.sent"
    [ "$(sort -u "$work/$kind.sent" | wc -l)" -eq "$count" ] ||
        fail "$kind producer did not print $count distinct ids: $(cat "$work/$kind.producer")"
    ok
    first=$(head -n 1 "$work/$kind.sent")
    grep -Eq "^again +$first \(duplicate: nothing new enqueued\)$" \
        "$work/$kind.producer" ||
        fail "$kind producer's retry was not a duplicate of $first: $(cat "$work/$kind.producer")"
    ok

    rc=0
    HOPPER_URL=$url "${preload[@]}" "$ex/worker" "${args[@]}" \
        > "$work/$kind.worker" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "$kind worker exited $rc: $(cat "$work/$kind.worker")"
    ok

    # Every id sent was received; every third claim was nacked and retried.
    while read -r id; do
        grep -Eq "^got $id attempt 1/[0-9]+: order [0-9]+$" "$work/$kind.worker" ||
            fail "$kind worker never got $id: $(cat "$work/$kind.worker")"
    done < "$work/$kind.sent"
    ok
    grep -Eq '^  nacked$' "$work/$kind.worker" ||
        fail "$kind worker nacked nothing: $(cat "$work/$kind.worker")"
    ok
    tail -n 1 "$work/$kind.worker" | grep -Eq '^idle for [0-9]+ ms, stopping$' ||
        fail "$kind worker did not stop idle: $(cat "$work/$kind.worker")"
    ok

    # The broker agrees: all delivered, nothing left or dead.
    rc=0
    "$prefix/bin/hopper" --url "$url" --json stats "$lane" \
        > "$work/$kind.stats" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "hopper stats $lane exited $rc: $(cat "$work/$kind.stats")"
    jq -e --argjson n "$count" '.pending == 0 and .delayed == 0
        and .claimed == 0 and .dead == 0 and .delivered == $n
        and .enqueued_total == $n and .dedupe_hits_total == 1
        and .acked_total == $n' "$work/$kind.stats" > /dev/null ||
        fail "$lane is not $count delivered messages: $(cat "$work/$kind.stats")"
    ok
done

# ---- the worker runtime: runtime_worker acks what the producer sent -----
lane=examples-runtime count=6
rc=0
"${preload[@]}" "$work/ex/cmake/producer" "$url" "$lane" "$count" \
    > "$work/runtime.producer" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "producer exited $rc: $(cat "$work/runtime.producer")"
rc=0
"${preload[@]}" "$work/ex/cmake/runtime_worker" "$url" "$lane" "$count" \
    > "$work/runtime.worker" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "runtime_worker exited $rc: $(cat "$work/runtime.worker")"
grep -Eq "^stopped: $count acked, [0-9]+ retried, 0 dead$" \
    "$work/runtime.worker" ||
    fail "runtime_worker did not ack $count: $(cat "$work/runtime.worker")"
"$prefix/bin/hopper" --url "$url" --json stats "$lane" > "$work/runtime.stats"
jq -e --argjson n "$count" '.delivered == $n and .claimed == 0' \
    "$work/runtime.stats" > /dev/null ||
    fail "$lane is not $count delivered: $(cat "$work/runtime.stats")"
ok

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "hopperd exited $rc on SIGTERM: $(cat "$work/hopperd.err")"
ok

echo "$passed passed, 0 failed"
